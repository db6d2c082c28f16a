/**
 * The ceiling of any design that keeps the off-site copy out of the agents' reach: the bytes go
 * agent → server (inbox) → controller → server (off-site stream) → controller again (read back
 * before the receipt), four TLS passes where a plain publish makes one. This is that path and
 * nothing else, in plain nats.js with node:crypto hashing, one process per role as in a fleet:
 *   publish  `count` 1 MiB messages into BENCH_RELAY_IN, 16 in flight;
 *   relay    consumes them (acked once stored), publishes each into BENCH_RELAY_OUT, 16 in flight;
 *   verify   reads BENCH_RELAY_OUT as it fills and hashes every byte;
 *   publish-direct (runRelay's `direct`) publishes into BENCH_RELAY_OUT itself, for the verifier.
 * `runRelay` creates the streams, runs the three as child processes and returns MB/s from the
 * first publish to the last byte verified. Run as a child: `relay.ts <role> <count> <options json>`.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { connect, nkeyAuthenticator, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';

const MiB = 1024 * 1024;
/** What a child needs to connect: the server, the CA file and an nkey seed file. */
export interface RelayConn {
  servers: string;
  caFile: string;
  seedFile: string;
}

const open = (c: RelayConn) => connect({ servers: c.servers, tls: { caFile: c.caFile }, authenticator: nkeyAuthenticator(new TextEncoder().encode(readFileSync(c.seedFile, 'utf8').trim())) });

/** Publishes `payloads` on `subject`, 16 in flight, calling `stored` as each is acked. */
async function pipelined(nc: NatsConnection, subject: string, payloads: AsyncIterable<Uint8Array>, stored: () => void = () => {}) {
  const js = jetstream(nc);
  const inFlight: Promise<unknown>[] = [];
  for await (const p of payloads) {
    inFlight.push(js.publish(subject, p).then(stored));
    if (inFlight.length >= 16) await inFlight.shift();
  }
  await Promise.all(inFlight);
}

async function child(role: string, count: number, c: RelayConn): Promise<void> {
  const nc = await open(c);
  const js = jetstream(nc);
  if (role.startsWith('publish')) {
    const payload = randomBytes(MiB);
    process.stdout.write(`${Date.now()}\n`); // the start
    await pipelined(nc, role === 'publish' ? 'bench.relay.in' : 'bench.relay.out', (async function* () { for (let i = 0; i < count; i++) yield payload; })());
  } else {
    const stream = role === 'relay' ? 'BENCH_RELAY_IN' : 'BENCH_RELAY_OUT';
    const consumer = await js.consumers.get(stream, role);
    const messages = await consumer.consume({ max_bytes: 16 * MiB });
    process.stdout.write('ready\n');
    const sha = createHash('sha256');
    let n = 0;
    const source = (async function* () {
      for await (const m of messages) {
        if (role === 'relay') yield Object.assign(m.data, { ack: () => m.ack() });
        else sha.update(m.data);
        if (++n === count) break;
      }
    })();
    if (role === 'relay') {
      const acks: (() => void)[] = [];
      await pipelined(nc, 'bench.relay.out', (async function* () { for await (const d of source) (acks.push(d.ack), yield d); })(), () => acks.shift()!());
    } else for await (const _ of source);
    sha.digest();
    process.stdout.write(`${Date.now()}\n`); // verify: the end
  }
  await nc.drain();
}

/**
 * The three roles over `c` with `count` MiB; MB/s from the first publish to the last byte
 * verified. `direct`: no relay, the publisher writes the off-site stream itself and the verifier
 * reads it back (two passes: the least any design with a read-back before the receipt can do).
 */
export async function runRelay(nc: NatsConnection, c: RelayConn, count: number, o: { direct?: boolean } = {}): Promise<number> {
  const jsm = await jetstreamManager(nc);
  for (const [name, subject] of [['BENCH_RELAY_IN', 'bench.relay.in'], ['BENCH_RELAY_OUT', 'bench.relay.out']] as const) {
    await jsm.streams.add({ name, subjects: [subject], storage: StorageType.File });
  }
  await jsm.consumers.add('BENCH_RELAY_IN', { durable_name: 'relay', ack_policy: AckPolicy.Explicit, max_ack_pending: 64 });
  await jsm.consumers.add('BENCH_RELAY_OUT', { durable_name: 'verify', ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All });
  try {
    const self = fileURLToPath(import.meta.url);
    const start = (role: string, ready: () => void = () => {}) => new Promise<number>((resolve, reject) => {
      const p = spawn(process.execPath, ['--import', 'tsx', self, role, String(count), JSON.stringify(c)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      p.stdout.on('data', (d) => ((out += d), out.startsWith('ready\n') && ready()));
      p.on('close', (code) => (ready(), code === 0 ? resolve(Number(out.trim().split('\n').pop())) : reject(new Error(`bench relay: ${role} exited with ${code}`))));
    });
    // the consumers first, so the clock starts with both listening
    let verified!: Promise<number>;
    let relayed: Promise<number> = Promise.resolve(0);
    await new Promise<void>((ready) => (verified = start('verify', ready)));
    if (!o.direct) await new Promise<void>((ready) => (relayed = start('relay', ready)));
    const [end, , begin] = await Promise.all([verified, relayed, start(o.direct ? 'publish-direct' : 'publish')]);
    return Math.round(((count * MiB) / 1e6 / ((end - begin) / 1000)) * 10) / 10;
  } finally {
    for (const name of ['BENCH_RELAY_IN', 'BENCH_RELAY_OUT']) await jsm.streams.delete(name);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await child(process.argv[2]!, Number(process.argv[3]), JSON.parse(process.argv[4]!));
