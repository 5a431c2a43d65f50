import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { groupsFromProc, PeerAuthorizer, type CredentialReader, type PeerIdentity } from "./peer-auth.js";

const log = pino({ level: "silent" });

/** Credentials by fd, counting the reads. */
function reader(byFd: Record<number, PeerIdentity & { groups?: number[] | Error }>): CredentialReader & { reads: number } {
  const r = {
    reads: 0,
    peerCred(fd: number): PeerIdentity {
      r.reads++;
      const c = byFd[fd];
      if (c === undefined) throw Object.assign(new Error("getsockopt(SO_PEERCRED) ENOTSOCK"), { code: "ENOTSOCK" });
      return { pid: c.pid, uid: c.uid, gid: c.gid };
    },
    peerGroups(fd: number): number[] {
      const g = byFd[fd]?.groups ?? [];
      if (g instanceof Error) throw g;
      return g;
    },
  };
  return r;
}

const enoprotoopt = Object.assign(new Error("getsockopt(SO_PEERGROUPS) ENOPROTOOPT"), { code: "ENOPROTOOPT" });

describe("PeerAuthorizer", () => {
  const creds = reader({
    3: { pid: 10, uid: 0, gid: 0 },
    4: { pid: 11, uid: 1000, gid: 1000, groups: [27, 100] },
    5: { pid: 12, uid: 1001, gid: 100 },
    6: { pid: 13, uid: 1002, gid: 1002, groups: [27] },
    7: { pid: 14, uid: 1003, gid: 1003, groups: enoprotoopt },
    8: { pid: 15, uid: 1004, gid: 1004, groups: Object.assign(new Error("EBADF"), { code: "EBADF" }) },
    9: { pid: 16, uid: 4242, gid: 4242 },
  });
  const auth = new PeerAuthorizer({ log, socketGroup: 100, ownUid: 4242, credentials: creds, procGroups: (pid) => (pid === 14 ? [100] : []) });
  const decide = (fd: number) => auth.decide({ fd });

  test("root, the daemon's own user, and members by primary or supplementary group are allowed", () => {
    assert.equal(decide(3).allowed, true);
    assert.equal(decide(9).allowed, true);
    assert.equal(decide(5).allowed, true);
    assert.equal(decide(4).allowed, true);
  });

  test("others are refused with a reason naming uid and group", () => {
    const d = decide(6);
    assert.equal(d.allowed, false);
    assert.ok(!d.allowed && /uid 1002 is neither root nor a member of group 100/.test(d.reason));
    assert.deepEqual(d.peer, { pid: 13, uid: 1002, gid: 1002 });
  });

  test("without SO_PEERGROUPS, the groups come from /proc/<pid>/status", () => {
    assert.equal(decide(7).allowed, true);
  });

  test("fails closed when the groups cannot be read, or the socket is gone", () => {
    assert.equal(decide(8).allowed, false);
    assert.equal(decide(99).allowed, false);
    assert.equal(auth.decide(undefined).allowed, false);
    assert.equal(auth.decide({ fd: -1 }).allowed, false);
  });

  test("the decision is made once per connection", () => {
    const handle = { fd: 4 };
    const before = creds.reads;
    for (let i = 0; i < 5; i++) assert.equal(auth.decide(handle).allowed, true);
    assert.equal(creds.reads - before, 1);
  });

  test("without a socket group only root and the daemon's own user", () => {
    const a = new PeerAuthorizer({ log, ownUid: 4242, credentials: creds });
    assert.deepEqual([3, 9, 4, 5].map((fd) => a.decide({ fd }).allowed), [true, true, false, false]);
  });
});

test("groupsFromProc reads this process's supplementary groups", () => {
  const all = process.getgroups?.() ?? [];
  for (const g of groupsFromProc(process.pid)) assert.ok(all.includes(g), `group ${g}`);
});
