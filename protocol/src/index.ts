/**
 * @medvault/protocol: everything agent and controller must agree on — NATS subjects, versioned
 * message schemas, canonical encoding, signatures, order checks, nkey seed checks and errors. No I/O.
 */
export * from './errors.js';
export * from './ids.js';
export * from './canonical.js';
export * from './subjects.js';
export * from './messages.js';
export * from './decode.js';
export * from './sign.js';
export * from './orders.js';
export * from './objects.js';
export * from './audit.js';
export * from './config-issues.js';
export * from './retention.js';
export * from './format.js';
export * from './nkey.js';
export * from './nats-tls.js';
