/** A notify socket standing in for systemd (NOTIFY_SOCKET) in end-to-end tests. */
import { bindDatagram, closeFd, recvDatagram } from '../../agent/src/platform/fsx.js';

/** A notify socket standing in for systemd; collects every datagram. */
export class NotifySocket {
  readonly messages: string[] = [];
  private readonly fd: number;
  private readonly timer: NodeJS.Timeout;
  constructor(readonly address: string) {
    this.fd = bindDatagram(address);
    this.timer = setInterval(() => this.poll(), 100);
  }
  poll(): string[] {
    for (let m = recvDatagram(this.fd, 0); m !== null; m = recvDatagram(this.fd, 0)) this.messages.push(m);
    return this.messages;
  }
  close(): void {
    clearInterval(this.timer);
    closeFd(this.fd);
  }
}
