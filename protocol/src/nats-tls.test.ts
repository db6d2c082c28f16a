import type { PeerCertificate } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { checkNatsServerIdentity } from './nats-tls.js';

const cert = { subject: { CN: 'nats.example.org' }, subjectaltname: 'DNS:nats.example.org, IP Address:10.0.0.5' } as unknown as PeerCertificate;

describe('checkNatsServerIdentity', () => {
  it('checks a connection without a server name against the address dialled', () => {
    expect(checkNatsServerIdentity.call({ servername: '', socket: { remoteAddress: '10.0.0.5' } }, 'localhost', cert)).toBeUndefined();
    expect(checkNatsServerIdentity.call({ servername: '', socket: { remoteAddress: '10.0.0.6' } }, 'localhost', cert)?.message).toMatch(/IP: 10\.0\.0\.6 is not in the cert's list/);
  });

  it('checks a server name as given, whatever address it resolved to', () => {
    expect(checkNatsServerIdentity.call({ servername: 'nats.example.org', socket: { remoteAddress: '10.0.0.7' } }, 'nats.example.org', cert)).toBeUndefined();
    expect(checkNatsServerIdentity.call({ servername: 'other.example.org', socket: { remoteAddress: '10.0.0.5' } }, 'other.example.org', cert)?.message).toMatch(/Host: other\.example\.org\. is not in the cert's altnames/);
  });

  it('without a socket, checks what Node passes (and so refuses rather than guesses)', () => {
    expect(checkNatsServerIdentity.call(undefined, 'localhost', cert)?.message).toMatch(/Host: localhost\./);
  });
});
