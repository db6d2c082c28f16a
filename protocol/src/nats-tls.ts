/**
 * How every medvault program verifies the NATS server's certificate: the agent's link, the
 * controller, the medvault CLI and doctor's TLS check all use this, so they agree.
 *
 * Node checks a certificate against the name given to tls.connect. For a server named by an IP
 * address (tls://10.0.0.5:4222) nats.js gives none (nats-io/nats.js#303: an IP is no TLS server
 * name), and Node then checks the certificate against "localhost". Here such a connection is
 * checked against the address actually dialled instead, so a certificate naming that IP is
 * accepted and one that does not is refused. Servers named by host name are checked as before.
 */
import { checkServerIdentity as nodeCheck, type PeerCertificate } from 'node:tls';
import type { Socket } from 'node:net';

/** What Node passes as `this` to checkServerIdentity: the tls.connect options it was given. */
interface ConnectOptions {
  servername?: string;
  socket?: Pick<Socket, 'remoteAddress'>;
}

/**
 * tls.connect's `checkServerIdentity`. MUST be called as Node calls it (`options.checkServerIdentity(h, cert)`).
 * Without a server name, the host checked is the peer address of the socket that was dialled;
 * when there is none, Node's `hostname` is checked as is (which refuses rather than accepts).
 */
export function checkNatsServerIdentity(this: ConnectOptions | undefined, hostname: string, cert: PeerCertificate): Error | undefined {
  const dialled = this?.servername ? undefined : this?.socket?.remoteAddress;
  return nodeCheck(dialled ?? hostname, cert);
}

/** The `tls` connection option of nats.js for a server whose certificate is signed by `caFile`. */
export function natsTls(caFile: string): { caFile: string; checkServerIdentity: typeof checkNatsServerIdentity } {
  return { caFile, checkServerIdentity: checkNatsServerIdentity };
}
