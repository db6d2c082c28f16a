import { describe, it, expect } from 'vitest';
import type { Alert } from '@medvault/protocol';
import { Alerts, DISK_OK } from './alerts.js';

const book = () => {
  const sent: Alert[] = [];
  return { sent, alerts: new Alerts({ site: 'clinic-a', send: (a) => sent.push(a), now: () => 1 }) };
};

describe('Alerts', () => {
  it('sends an alert once when it opens and once when it resolves', () => {
    const { sent, alerts } = book();
    alerts.raise({ key: 'disk:/d2', code: 'disk-full', severity: 'critical', message: '/d2: full' });
    alerts.raise({ key: 'disk:/d2', code: 'disk-full', severity: 'critical', message: '/d2: full' });
    alerts.resolve('disk:/d2', '/d2: backed up again', DISK_OK);
    alerts.resolve('disk:/d2', '/d2: backed up again', DISK_OK);
    expect(sent.map((a) => [a.state, a.code])).toEqual([['open', 'disk-full'], ['resolved', 'disk-full']]);
  });

  it('resolves, once, an alert an earlier process raised (a CLI run, the daemon before a restart), when told what it was', () => {
    const { sent, alerts } = book();
    alerts.resolve('disk:/d2', '/d2: backed up again', DISK_OK);
    alerts.resolve('disk:/d2', '/d2: backed up again', DISK_OK);
    alerts.resolve('watcher:records'); // nothing known of it: nothing sent
    expect(sent).toMatchObject([{ key: 'disk:/d2', state: 'resolved', code: 'disk-ok', severity: 'critical', message: '/d2: backed up again' }]);
    alerts.raise({ key: 'disk:/d2', code: 'disk-full', severity: 'critical', message: '/d2: full' });
    alerts.resolve('disk:/d2', '/d2: backed up again', DISK_OK);
    expect(sent.map((a) => a.state)).toEqual(['resolved', 'open', 'resolved']);
  });
});
