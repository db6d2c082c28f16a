/**
 * What a one-shot command undoes when Ctrl-C or SIGTERM stops it (main.ts exitOnSignal runs these
 * just before it exits): a progress bar gives the terminal its cursor back, a restore removes the
 * temp files it was still writing (a partial `.mv-restore-*.tmp` of a big file can be most of its
 * size). Synchronous only: the process exits right after. A kill -9 or a power cut runs none.
 */
const hooks = new Set<() => void>();

/** Adds `undo`; the returned function takes it out again (true when it was still there). */
export function onInterrupt(undo: () => void): () => boolean {
  hooks.add(undo);
  return () => hooks.delete(undo);
}

/** Runs and forgets every hook; one that throws does not stop the others. */
export function runInterruptHooks(): void {
  for (const undo of hooks) {
    try {
      undo();
    } catch {
      // best effort: the process is exiting
    }
  }
  hooks.clear();
}
