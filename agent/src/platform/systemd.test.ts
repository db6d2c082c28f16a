import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { bindDatagram, closeFd, notify, recvDatagram } from './fsx.js';
import { Watchdog, staleLoops, systemdNotifier } from './systemd.js';

const dir = mkdtempSync(join(tmpdir(), 'mv-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function drain(fd: number): string[] {
  const out: string[] = [];
  for (let m = recvDatagram(fd, 20); m !== null; m = recvDatagram(fd, 20)) out.push(m);
  return out;
}

describe('sd_notify over a real AF_UNIX datagram socket', () => {
  it('sends to a path socket and to an abstract one (@name)', () => {
    for (const addr of [join(dir, 'notify.sock'), `@mv-notify-test-${process.pid}`]) {
      const fd = bindDatagram(addr);
      try {
        notify(addr, 'READY=1\nSTATUS=hello');
        expect(recvDatagram(fd, 1000)).toBe('READY=1\nSTATUS=hello');
        expect(recvDatagram(fd, 20)).toBeNull();
      } finally {
        closeFd(fd);
      }
    }
  });

  it('never blocks when the receiver does not read: EAGAIN, and the notifier swallows it', () => {
    const addr = `@mv-notify-full-${process.pid}`;
    const fd = bindDatagram(addr);
    try {
      let err: unknown;
      for (let i = 0; i < 10_000 && !err; i++) {
        try {
          notify(addr, `WATCHDOG=1 ${i}`);
        } catch (e) {
          err = e;
        }
      }
      expect(err).toEqual(expect.objectContaining({ code: 'EAGAIN' }));
      expect(() => systemdNotifier({ NOTIFY_SOCKET: addr }).send({ WATCHDOG: 1 })).not.toThrow();
    } finally {
      closeFd(fd);
    }
  });

  it('throws with an errno code when nobody listens', () => {
    expect(() => notify(join(dir, 'nobody.sock'), 'READY=1')).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'sendto' }));
  });

  it('is a no-op without NOTIFY_SOCKET, and honours WATCHDOG_USEC and WATCHDOG_PID', () => {
    const sent: string[] = [];
    const off = systemdNotifier({}, 1, (_s, m) => sent.push(m));
    off.send({ READY: 1 });
    expect(off.active).toBe(false);
    expect(off.watchdogMs).toBeUndefined();
    expect(sent).toEqual([]);
    expect(systemdNotifier({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000' }, 7).watchdogMs).toBe(30_000);
    expect(systemdNotifier({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '7' }, 7).watchdogMs).toBe(30_000);
    expect(systemdNotifier({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '30000000', WATCHDOG_PID: '8' }, 7).watchdogMs).toBeUndefined();
  });
});

describe('watchdog', () => {
  it('pure: names loops older than their limit, counting never-run loops from the start', () => {
    const limits = [{ name: 'a', maxAgeMs: 10 }, { name: 'b', maxAgeMs: 100 }];
    expect(staleLoops(limits, new Map(), 0, 10)).toEqual([]);
    expect(staleLoops(limits, new Map([['a', 5]]), 0, 50)).toEqual([{ name: 'a', ageMs: 45 }]);
    expect(staleLoops(limits, new Map([['a', 45]]), 0, 101)).toEqual([{ name: 'a', ageMs: 56 }, { name: 'b', ageMs: 101 }]);
  });

  it('sends READY=1, pets only while every loop beats, and says which loop is late', () => {
    const sock = join(dir, 'wd.sock');
    const fd = bindDatagram(sock);
    let now = 1000;
    const wd = new Watchdog(systemdNotifier({ NOTIFY_SOCKET: sock, WATCHDOG_USEC: '60000000' }), [{ name: 'replication', maxAgeMs: 300_000 }, { name: 'status', maxAgeMs: 60_000 }], () => now);
    try {
      wd.beat('status');
      wd.ready('running');
      const first = drain(fd);
      expect(first[0]).toMatch(/^READY=1\nSTATUS=running\nMAINPID=\d+$/);
      expect(first[1]).toBe('WATCHDOG=1');
      now += 59_000;
      expect(wd.check()).toBe(true);
      now += 2000; // the status timer stopped: 61 s without a beat
      expect(wd.check()).toBe(false);
      expect(drain(fd)).toEqual(['WATCHDOG=1', 'STATUS=unhealthy: status has not run for 61 s']);
      wd.beat('status');
      expect(wd.check()).toBe(true);
      now += 300_000;
      wd.beat('status');
      expect(wd.check()).toBe(false); // replication never ran in 5 minutes
      expect(drain(fd)).toEqual(['WATCHDOG=1\nSTATUS=running', 'STATUS=unhealthy: replication has not run for 361 s']);
      wd.stopping();
      expect(drain(fd)).toEqual(['STOPPING=1\nSTATUS=stopping']);
    } finally {
      wd.stopping();
      closeFd(fd);
    }
  });

  it('withholds WATCHDOG=1 while a check names a problem, beside late loops, and pets again once it passes', () => {
    const sent: string[] = [];
    let now = 0;
    let problem: string | undefined;
    const wd = new Watchdog(systemdNotifier({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '60000000' }, process.pid, (_s, m) => sent.push(m)), [{ name: 'status', maxAgeMs: 60_000 }], () => now);
    wd.addCheck('control', () => problem);
    expect(wd.check()).toBe(true);
    problem = 'control stream follower silent for 400 s while connected';
    expect(wd.check()).toBe(false);
    now = 61_000;
    expect(wd.check()).toBe(false);
    problem = undefined;
    wd.beat('status');
    expect(wd.check()).toBe(true);
    expect(sent).toEqual([
      'WATCHDOG=1',
      'STATUS=unhealthy: control stream follower silent for 400 s while connected',
      'STATUS=unhealthy: status has not run for 61 s, control stream follower silent for 400 s while connected',
      'WATCHDOG=1\nSTATUS=running',
    ]);
  });

  it('times loops on the monotonic clock by default: a wall-clock step forward (NTP correcting a dead RTC) makes no loop late', () => {
    const sent: string[] = [];
    const wall = Date.now;
    let step = 0;
    const now = vi.spyOn(Date, 'now').mockImplementation(() => wall.call(Date) + step);
    try {
      const wd = new Watchdog(systemdNotifier({ NOTIFY_SOCKET: '@x', WATCHDOG_USEC: '60000000' }, process.pid, (_s, m) => sent.push(m)), [{ name: 'jobs', maxAgeMs: 180_000 }]);
      wd.beat('jobs');
      step = 3_600_000;
      expect(wd.check()).toBe(true);
    } finally {
      now.mockRestore();
    }
    expect(sent).toEqual(['WATCHDOG=1']);
  });
});
