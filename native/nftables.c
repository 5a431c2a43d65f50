// The only native code of the nftables layer: one libnftables context, and a
// function that runs a command buffer (nft's text syntax) as one transaction
// and returns what nft printed. Everything about our table (its chains, sets,
// maps and elements) lives in TypeScript (src/nftables/). Kept apart from the
// netlink addon so that a machine without libnftables still runs the rest.
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

// libnftables contexts are not thread-safe: calls run one at a time.
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static struct nft_ctx *ctx;

struct run_job {
  char *commands;
  bool json_output;
  int rc;
  char *output;
  char *error;
};

static char *copy_or_empty(const char *s) { return strdup(s != NULL ? s : ""); }

// Runs on whichever thread calls it; the socket libnftables opened at
// context creation (on the main thread, in the daemon's namespace) is used.
static void run_job(struct run_job *job) {
  pthread_mutex_lock(&ctx_lock);
  unsigned int flags = job->json_output ? NFT_CTX_OUTPUT_JSON : 0;
  nft_ctx_output_set_flags(ctx, flags);
  job->rc = nft_run_cmd_from_buffer(ctx, job->commands);
  // The getters rewind the buffers, so each call sees only its own output.
  job->output = copy_or_empty(nft_ctx_get_output_buffer(ctx));
  job->error = copy_or_empty(nft_ctx_get_error_buffer(ctx));
  pthread_mutex_unlock(&ctx_lock);
}

static void free_job(struct run_job *job) {
  free(job->commands);
  free(job->output);
  free(job->error);
}

// Resolves with nft's output, or makes an Error whose message is nft's own.
static napi_status settle(napi_env env, struct run_job *job, napi_value *value, bool *ok) {
  *ok = job->rc == 0;
  if (*ok) return napi_create_string_utf8(env, job->output, NAPI_AUTO_LENGTH, value);
  napi_value message, code;
  const char *text = job->error[0] != '\0' ? job->error : "nft: the command failed without a message";
  napi_status s = napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  if (s == napi_ok) s = napi_create_string_utf8(env, "ENFT", NAPI_AUTO_LENGTH, &code);
  if (s == napi_ok) s = napi_create_error(env, code, message, value);
  return s;
}

static bool read_args(napi_env env, napi_callback_info info, struct run_job *job) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "run(commands, jsonOutput?): commands must be a string");
    return false;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "run(commands, jsonOutput?): commands must be a string");
    return false;
  }
  job->commands = malloc(len + 1);
  if (job->commands == NULL) {
    napi_throw_error(env, "ENOMEM", "run: out of memory");
    return false;
  }
  napi_get_value_string_utf8(env, argv[0], job->commands, len + 1, &len);
  job->json_output = false;
  if (argc > 1) napi_get_value_bool(env, argv[1], &job->json_output);
  return true;
}

static bool have_context(napi_env env) {
  if (ctx != NULL) return true;
  napi_throw_error(env, "ENFT", "libnftables: no context (nft_ctx_new failed)");
  return false;
}

// runSync(commands, jsonOutput?): string. Blocks the calling thread.
static napi_value run_sync(napi_env env, napi_callback_info info) {
  struct run_job job = {0};
  if (!have_context(env) || !read_args(env, info, &job)) {
    free_job(&job);
    return NULL;
  }
  run_job(&job);
  napi_value value = NULL;
  bool ok;
  if (job.output == NULL || job.error == NULL) {
    napi_throw_error(env, "ENOMEM", "run: out of memory");
  } else if (settle(env, &job, &value, &ok) != napi_ok) {
    napi_throw_error(env, NULL, "run: could not build the result");
    value = NULL;
  } else if (!ok) {
    napi_throw(env, value);
    value = NULL;
  }
  free_job(&job);
  return value;
}

struct run_async {
  napi_async_work work;
  napi_deferred deferred;
  struct run_job job;
};

static void run_async_execute(napi_env env, void *data) {
  (void)env;
  run_job(&((struct run_async *)data)->job);
}

static void run_async_complete(napi_env env, napi_status status, void *data) {
  struct run_async *op = data;
  napi_value value;
  bool ok = false;
  if (status != napi_ok || op->job.output == NULL || op->job.error == NULL) {
    napi_value message;
    napi_create_string_utf8(env, "nft: the transaction was cancelled or ran out of memory", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
  } else if (settle(env, &op->job, &value, &ok) != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "nft: could not build the result", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &value);
    ok = false;
  }
  if (ok) napi_resolve_deferred(env, op->deferred, value);
  else napi_reject_deferred(env, op->deferred, value);
  napi_delete_async_work(env, op->work);
  free_job(&op->job);
  free(op);
}

// run(commands, jsonOutput?): Promise<string>, on a worker thread of libuv's pool.
static napi_value run(napi_env env, napi_callback_info info) {
  if (!have_context(env)) return NULL;
  struct run_async *op = calloc(1, sizeof *op);
  if (op == NULL) {
    napi_throw_error(env, "ENOMEM", "run: out of memory");
    return NULL;
  }
  if (!read_args(env, info, &op->job)) {
    free_job(&op->job);
    free(op);
    return NULL;
  }
  napi_value promise, name;
  if (napi_create_promise(env, &op->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "nftRun", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, run_async_execute, run_async_complete, op, &op->work) != napi_ok ||
      napi_queue_async_work(env, op->work) != napi_ok) {
    free_job(&op->job);
    free(op);
    napi_throw_error(env, NULL, "run: could not queue the work");
    return NULL;
  }
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  // Made on the main thread while it is in the daemon's own namespace.
  if (ctx == NULL) {
    ctx = nft_ctx_new(NFT_CTX_DEFAULT);
    if (ctx != NULL) {
      nft_ctx_buffer_output(ctx);
      nft_ctx_buffer_error(ctx);
    }
  }
  napi_property_descriptor props[] = {
      {"run", NULL, run, NULL, NULL, NULL, napi_default, NULL},
      {"runSync", NULL, run_sync, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
