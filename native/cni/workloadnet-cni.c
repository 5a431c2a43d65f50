/*
 * workloadnet-cni: the CNI plugin executable. It does no CNI work itself: it
 * forwards the invocation (the CNI_* variables and the network config from
 * stdin) to workloadnetd over the daemon's unix socket and prints the daemon's
 * answer, with its exit code. All CNI logic (config parsing, versions, results,
 * errors) lives in the daemon (src/cni/). A runtime execs this once per pod
 * operation, possibly where no Node.js is installed, so it is small, static
 * and quick to start.
 *
 * The only things read here from the config are "socket" (where the daemon
 * listens; default below) and "cniVersion" (to answer in the right version when
 * the daemon cannot be reached). These answers are made locally:
 *   - daemon unreachable: CNI error 11 ("try again later") naming the socket;
 *   - VERSION while the daemon is unreachable: the supported versions, so a
 *     runtime can probe the plugin without a daemon;
 *   - a config that is not a JSON object (error 6) or whose "socket" is not an
 *     absolute path (error 7): without it there is no daemon to ask.
 *
 * Framing (big-endian u32 lengths; keep in step with src/cni/wire.ts):
 *   request  = MAGIC envLen stdinLen env stdin     env = ("KEY=VALUE" NUL)*
 *   response = MAGIC exitCode stdoutLen stderrLen stdout stderr
 * The request is not followed by a shutdown(SHUT_WR): the daemon closes the
 * connection after its reply.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define MAGIC "WKCNI/1\n"
#define MAGIC_LEN 8
#define MAX_ENV_BYTES (64 * 1024)
#define MAX_STDIN_BYTES (1024 * 1024)
#define MAX_STDOUT_BYTES (1024 * 1024)
#define MAX_STDERR_BYTES (64 * 1024)
#define DEFAULT_SOCKET "/run/workloadnet/workloadnet.sock"
#define LATEST_VERSION "1.1.0"
/* How long to wait for the daemon's answer. */
#define REPLY_TIMEOUT_S 120
/* Deeper nesting than this in the config is refused as malformed. */
#define MAX_JSON_DEPTH 256

static const char *const SUPPORTED_VERSIONS[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
#define N_SUPPORTED (sizeof SUPPORTED_VERSIONS / sizeof SUPPORTED_VERSIONS[0])
static const char *const FORWARDED[] = {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"};
#define N_FORWARDED (sizeof FORWARDED / sizeof FORWARDED[0])

enum { CNI_IO_FAILURE = 5, CNI_DECODE_FAILURE = 6, CNI_INVALID_CONFIG = 7, CNI_TRY_AGAIN = 11 };

/* ------------------------------------------------------------------------ */
/* Growable byte buffer; allocation failure ends the program (exit 1). */

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    char *d = realloc(b->data, cap);
    if (d == NULL) {
        static const char oom[] = "workloadnet-cni: out of memory\n";
        (void)!write(2, oom, sizeof oom - 1);
        _exit(1);
    }
    b->data = d;
    b->cap = cap;
}

static void buf_add(struct buf *b, const void *p, size_t n) {
    buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void buf_str(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

static void buf_u32(struct buf *b, uint32_t v) {
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8), (unsigned char)v};
    buf_add(b, x, 4);
}

/* Appends s as a JSON string literal (quotes included). */
static void buf_json_string(struct buf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            buf_add(b, e, 2);
        } else if (c == '\n') {
            buf_add(b, "\\n", 2);
        } else if (c < 0x20 || c == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_add(b, e, 6);
        } else {
            buf_add(b, &s[i], 1);
        }
    }
    buf_add(b, "\"", 1);
}

/* ------------------------------------------------------------------------ */
/* A small strict JSON reader that pulls top-level string members out of an
 * object. Every value is fully checked (nesting included), so a malformed
 * document is reported as such rather than half-read. Later duplicates of a
 * key win, as with JavaScript's JSON.parse. */

struct json {
    const char *p, *end;
    int depth;
};

struct wanted {
    const char *key;
    struct buf value; /* decoded, NUL-terminated when found */
    int found;        /* 1: a string; -1: present but not a string */
};

static void json_ws(struct json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int json_hex4(struct json *j, uint32_t *out) {
    if (j->end - j->p < 4) return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(j->p[i]);
        if (h < 0) return -1;
        v = (v << 4) | (uint32_t)h;
    }
    j->p += 4;
    *out = v;
    return 0;
}

static void utf8_put(struct buf *b, uint32_t cp) {
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | (cp >> 6));
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | (cp >> 12));
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | (cp >> 18));
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (b) buf_add(b, u, n);
}

/* Reads a string at j->p (which is at the opening quote); decodes into out when given. */
static int json_string(struct json *j, struct buf *out) {
    if (j->p >= j->end || *j->p != '"') return -1;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') {
            if (out) {
                buf_reserve(out, 1);
                out->data[out->len] = '\0';
            }
            return 0;
        }
        if (c < 0x20) return -1;
        if (c != '\\') {
            if (out) buf_add(out, &c, 1);
            continue;
        }
        if (j->p >= j->end) return -1;
        char e = *j->p++;
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case '/': simple = '/'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'n': simple = '\n'; break;
        case 'r': simple = '\r'; break;
        case 't': simple = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (json_hex4(j, &cp) < 0) return -1;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                /* A high surrogate: a low one should follow; alone it becomes U+FFFD, as in JavaScript's UTF-8 output. */
                uint32_t lo;
                const char *save = j->p;
                if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                    j->p += 2;
                    if (json_hex4(j, &lo) < 0) return -1;
                    if (lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    } else {
                        j->p = save;
                        cp = 0xfffd;
                    }
                } else {
                    cp = 0xfffd;
                }
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                cp = 0xfffd;
            }
            utf8_put(out, cp);
            continue;
        }
        default:
            return -1;
        }
        if (out) buf_add(out, &simple, 1);
    }
    return -1; /* unterminated */
}

static int json_digits(struct json *j) {
    const char *start = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
    return j->p > start ? 0 : -1;
}

static int json_number(struct json *j) {
    if (j->p < j->end && *j->p == '-') j->p++;
    if (j->p < j->end && *j->p == '0') {
        j->p++;
    } else if (json_digits(j) < 0) {
        return -1;
    }
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (json_digits(j) < 0) return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
        if (json_digits(j) < 0) return -1;
    }
    return 0;
}

static int json_literal(struct json *j, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0) return -1;
    j->p += n;
    return 0;
}

static int json_value(struct json *j);

/* An object; at the top level (wanted != NULL) string members named in wanted are decoded. */
static int json_object(struct json *j, struct wanted *wanted, size_t n_wanted) {
    if (++j->depth > MAX_JSON_DEPTH) return -1;
    j->p++; /* '{' */
    json_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        j->depth--;
        return 0;
    }
    struct buf key = {0};
    for (;;) {
        json_ws(j);
        key.len = 0;
        if (json_string(j, wanted ? &key : NULL) < 0) goto bad;
        json_ws(j);
        if (j->p >= j->end || *j->p != ':') goto bad;
        j->p++;
        json_ws(j);
        struct wanted *w = NULL;
        for (size_t i = 0; wanted && i < n_wanted; i++) {
            if (strlen(wanted[i].key) == key.len && memcmp(wanted[i].key, key.data, key.len) == 0) w = &wanted[i];
        }
        if (w != NULL && j->p < j->end && *j->p == '"') {
            w->value.len = 0;
            if (json_string(j, &w->value) < 0) goto bad;
            w->found = 1;
        } else {
            if (w != NULL) w->found = -1;
            if (json_value(j) < 0) goto bad;
        }
        json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            break;
        }
        goto bad;
    }
    free(key.data);
    j->depth--;
    return 0;
bad:
    free(key.data);
    return -1;
}

static int json_array(struct json *j) {
    if (++j->depth > MAX_JSON_DEPTH) return -1;
    j->p++; /* '[' */
    json_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        j->depth--;
        return 0;
    }
    for (;;) {
        json_ws(j);
        if (json_value(j) < 0) return -1;
        json_ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static int json_value(struct json *j) {
    if (j->p >= j->end) return -1;
    switch (*j->p) {
    case '{': return json_object(j, NULL, 0);
    case '[': return json_array(j);
    case '"': return json_string(j, NULL);
    case 't': return json_literal(j, "true");
    case 'f': return json_literal(j, "false");
    case 'n': return json_literal(j, "null");
    default: return json_number(j);
    }
}

enum { JSON_OK = 0, JSON_EMPTY, JSON_NOT_OBJECT, JSON_MALFORMED };

/*
 * Fills `wanted` from a document that must be one JSON object. On failure
 * nothing is found and *where is the byte offset of the problem.
 */
static int json_extract(const char *doc, size_t n, struct wanted *wanted, size_t n_wanted, size_t *where) {
    struct json j = {doc, doc + n, 0};
    /* A UTF-8 byte order mark is not JSON; JSON.parse refuses it too. */
    json_ws(&j);
    int rc = JSON_OK;
    if (j.p == j.end) {
        rc = JSON_EMPTY;
    } else if (*j.p != '{') {
        rc = JSON_NOT_OBJECT;
    } else if (json_object(&j, wanted, n_wanted) < 0) {
        rc = JSON_MALFORMED;
    } else {
        json_ws(&j);
        if (j.p != j.end) rc = JSON_MALFORMED;
    }
    *where = (size_t)(j.p - doc);
    if (rc != JSON_OK) {
        for (size_t i = 0; i < n_wanted; i++) wanted[i].found = 0;
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Output */

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nobody is listening; nothing better to do */
        }
        p += w;
        n -= (size_t)w;
    }
}

static const char *answer_version = LATEST_VERSION;

/* Prints a CNI error object on stdout and exits 1. */
static void fail(int code, const char *msg, const char *details) {
    struct buf b = {0};
    buf_str(&b, "{\"cniVersion\":");
    buf_json_string(&b, answer_version, strlen(answer_version));
    char num[32];
    snprintf(num, sizeof num, ",\"code\":%d,\"msg\":", code);
    buf_str(&b, num);
    buf_json_string(&b, msg, strlen(msg));
    if (details != NULL && *details != '\0') {
        buf_str(&b, ",\"details\":");
        buf_json_string(&b, details, strlen(details));
    }
    buf_str(&b, "}\n");
    write_all(1, b.data, b.len);
    exit(1);
}

static void failf(int code, const char *details, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failf(int code, const char *details, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail(code, msg, details);
}

/* VERSION without the daemon: the same answer the daemon gives. */
static void local_version(void) {
    struct buf b = {0};
    buf_str(&b, "{\"cniVersion\":");
    buf_json_string(&b, answer_version, strlen(answer_version));
    buf_str(&b, ",\"supportedVersions\":[");
    for (size_t i = 0; i < N_SUPPORTED; i++) {
        if (i) buf_str(&b, ",");
        buf_json_string(&b, SUPPORTED_VERSIONS[i], strlen(SUPPORTED_VERSIONS[i]));
    }
    buf_str(&b, "]}\n");
    write_all(1, b.data, b.len);
    exit(0);
}

/* ------------------------------------------------------------------------ */
/* I/O with the daemon */

/* Reads exactly n bytes; 0 on success, -1 with errno (0 for an early EOF). */
static int read_full(int fd, void *p, size_t n) {
    char *c = p;
    while (n > 0) {
        ssize_t r = read(fd, c, n);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) {
            errno = 0;
            return -1;
        }
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

static int send_full(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void read_stdin(struct buf *in) {
    for (;;) {
        buf_reserve(in, 65536);
        ssize_t r = read(0, in->data + in->len, in->cap - in->len);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EBADF) return; /* no stdin at all: an empty config */
            failf(CNI_IO_FAILURE, NULL, "I/O failure: cannot read the network config from stdin: %s", strerror(errno));
        }
        if (r == 0) return;
        in->len += (size_t)r;
        if (in->len > MAX_STDIN_BYTES) failf(CNI_IO_FAILURE, NULL, "I/O failure: the network config on stdin is larger than %d bytes", MAX_STDIN_BYTES);
    }
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    const char *command = getenv("CNI_COMMAND");
    int is_version = command != NULL && strcmp(command, "VERSION") == 0;

    struct buf in = {0};
    read_stdin(&in);

    /*
     * Without a readable config the daemon's socket is unknown, so a config
     * that is not a JSON object is answered here (error 6, as the daemon would).
     * VERSION needs no config.
     */
    struct wanted wanted[2] = {{.key = "socket"}, {.key = "cniVersion"}};
    size_t where = 0;
    int parsed = json_extract(in.data ? in.data : "", in.len, wanted, 2, &where);
    if (parsed != JSON_OK && !is_version) {
        char at[64];
        snprintf(at, sizeof at, "at byte %zu of %zu", where, in.len);
        if (parsed == JSON_EMPTY) fail(CNI_DECODE_FAILURE, "no network configuration on stdin", NULL);
        if (parsed == JSON_NOT_OBJECT) fail(CNI_DECODE_FAILURE, "network configuration on stdin is not a JSON object", at);
        fail(CNI_DECODE_FAILURE, "network configuration on stdin is not valid JSON", at);
    }
    if (wanted[1].found == 1) {
        for (size_t i = 0; i < N_SUPPORTED; i++) {
            if (strcmp(wanted[1].value.data, SUPPORTED_VERSIONS[i]) == 0) answer_version = SUPPORTED_VERSIONS[i];
        }
    }

    const char *socket_path = DEFAULT_SOCKET;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (wanted[0].found == 1) {
        socket_path = wanted[0].value.data;
        size_t n = wanted[0].value.len;
        if (n == 0 || socket_path[0] != '/' || strlen(socket_path) != n || n >= sizeof addr.sun_path) {
            if (is_version) local_version();
            failf(CNI_INVALID_CONFIG, NULL, "invalid network config: \"socket\" must be an absolute path of at most %zu bytes", sizeof addr.sun_path - 1);
        }
    }
    memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) failf(CNI_TRY_AGAIN, NULL, "try again later: cannot create a unix socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int err = errno;
        if (is_version) local_version();
        failf(CNI_TRY_AGAIN, "workloadnetd serves CNI requests on the unix socket named by \"socket\" in the network config; is it running?",
              "try again later: cannot reach workloadnetd at %s: %s", socket_path, strerror(err));
    }
    struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    /* The request. */
    struct buf env = {0};
    for (size_t i = 0; i < N_FORWARDED; i++) {
        const char *v = getenv(FORWARDED[i]);
        if (v == NULL) continue;
        buf_str(&env, FORWARDED[i]);
        buf_add(&env, "=", 1);
        buf_add(&env, v, strlen(v) + 1); /* with its NUL */
    }
    if (env.len > MAX_ENV_BYTES) failf(CNI_IO_FAILURE, NULL, "I/O failure: the CNI_* variables take more than %d bytes", MAX_ENV_BYTES);
    struct buf req = {0};
    buf_add(&req, MAGIC, MAGIC_LEN);
    buf_u32(&req, (uint32_t)env.len);
    buf_u32(&req, (uint32_t)in.len);
    if (env.len) buf_add(&req, env.data, env.len);
    if (in.len) buf_add(&req, in.data, in.len);
    int send_errno = send_full(fd, req.data, req.len) < 0 ? errno : 0;

    /* The reply (read even if sending failed: the daemon may have answered already). */
    unsigned char head[MAGIC_LEN + 12];
    if (read_full(fd, head, sizeof head) < 0) {
        int err = errno ? errno : send_errno;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            failf(CNI_TRY_AGAIN, NULL, "try again later: workloadnetd at %s did not answer within %d s", socket_path, REPLY_TIMEOUT_S);
        }
        failf(CNI_TRY_AGAIN, NULL, "try again later: the connection to workloadnetd at %s closed before it answered%s%s", socket_path,
              err ? ": " : "", err ? strerror(err) : "");
    }
    if (memcmp(head, MAGIC, MAGIC_LEN) != 0) failf(CNI_IO_FAILURE, NULL, "I/O failure: %s did not answer as workloadnetd does", socket_path);
    uint32_t code = be32(head + MAGIC_LEN), out_len = be32(head + MAGIC_LEN + 4), err_len = be32(head + MAGIC_LEN + 8);
    if (out_len > MAX_STDOUT_BYTES || err_len > MAX_STDERR_BYTES) failf(CNI_IO_FAILURE, NULL, "I/O failure: workloadnetd's answer is over the size limits");
    char *body = malloc((size_t)out_len + err_len + 1);
    if (body == NULL) failf(CNI_IO_FAILURE, NULL, "out of memory");
    if (read_full(fd, body, (size_t)out_len + err_len) < 0) {
        failf(CNI_TRY_AGAIN, NULL, "try again later: the connection to workloadnetd at %s closed in the middle of its answer", socket_path);
    }
    close(fd);
    write_all(2, body + out_len, err_len);
    write_all(1, body, out_len);
    return code > 255 ? 1 : (int)code;
}
