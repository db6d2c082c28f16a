/**
 * The nkey seed check both programs run before connecting (protocol nkeySeedProblem) agrees with
 * the NATS client's own decoder (@nats-io/nkeys): on fresh seeds and on every one-character change
 * of one, it accepts exactly the user seeds nkeys can use.
 */
import { describe, expect, it } from 'vitest';
import { createAccount, createUser, fromSeed } from '@nats-io/nkeys';
import { nkeySeedProblem } from '@medvault/protocol';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const nkeysTakes = (seed: string) => {
  try {
    return fromSeed(new TextEncoder().encode(seed)).getPublicKey().startsWith('U');
  } catch {
    return false;
  }
};

describe('nkey seed check against @nats-io/nkeys', () => {
  it('accepts fresh user seeds and refuses account seeds', () => {
    for (let i = 0; i < 50; i++) expect(nkeySeedProblem(text(createUser().getSeed()))).toBeUndefined();
    expect(nkeySeedProblem(text(createAccount().getSeed()))).toMatch(/account seed/);
  });

  it('decides every one-character change of a seed as nkeys does', () => {
    const seed = text(createUser().getSeed());
    let differ = 0;
    for (let i = 0; i < seed.length; i++) {
      for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567') {
        const changed = `${seed.slice(0, i)}${c}${seed.slice(i + 1)}`;
        if (changed === seed) continue;
        differ++;
        expect(nkeySeedProblem(changed) === undefined, `${i}:${c}`).toBe(nkeysTakes(changed));
      }
    }
    expect(differ).toBe(58 * 31);
  });
});
