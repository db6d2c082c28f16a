/**
 * prune/: retention (which snapshots to keep) and the Pruner (which deletes what no kept snapshot
 * needs, crash-safe at every step). The pure policy lives in @medvault/protocol (retention.ts):
 * the controller applies the same rules to the off-site copy.
 */
export { LEGAL_HOLD, applyPolicy, bucketOf, formatDuration, hasRules, orderSnapshots, parseDuration } from '@medvault/protocol';
export type { Decision, PolicySnapshot, RetentionPolicy } from '@medvault/protocol';
