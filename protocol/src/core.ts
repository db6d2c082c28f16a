/**
 * `@medvault/protocol/core`: errors, codes and ids without the message schemas. For code that runs
 * in worker threads (the agent's crypto pool): the barrel loads zod and builds every schema, which
 * made each pool thread's start take ~0.2-0.45 s, and a backup's first new chunk waited for it.
 */
export * from './errors.js';
export * from './ids.js';
