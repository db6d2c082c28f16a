import { describe, expect, it } from 'vitest';
import { codes, MedvaultError, nkeySeedProblem, readNkeySeed } from './index.js';

// Made for this test by @nats-io/nkeys (createUser, createAccount); they open nothing.
const USER_SEED = 'SUANX5WA3JAV542ITJTYITNMDQSWGB4TS3WDTPR7UHQZFXOKVYSAHGC3MY';
const USER_PUBLIC = 'UCGO2ICKSB47O25K3KO5DQLQTE54724JD6VQZVX6MZHQYSTIBVDJRQJJ';
const ACCOUNT_SEED = 'SAAHK34U3X3EVXQUIV5TR6UUA2IVRC6UHJUKOVXLJC5JSXXXVKZSHEL3JY';

describe('nkey seeds', () => {
  it('accepts a user seed, with the white space around it a file has', () => {
    expect(nkeySeedProblem(USER_SEED)).toBeUndefined();
    expect(nkeySeedProblem(`  ${USER_SEED}\r\n`)).toBeUndefined();
    expect(new TextDecoder().decode(readNkeySeed('/etc/medvault/site.nk', () => `${USER_SEED}\n`))).toBe(USER_SEED);
  });

  it('says what is wrong with anything else, without repeating the content', () => {
    const flipped = `${USER_SEED.slice(0, 20)}${USER_SEED[20] === 'A' ? 'B' : 'A'}${USER_SEED.slice(21)}`;
    const rows: [string, RegExp][] = [
      ['', /^the file is empty$/],
      [' \n', /^the file is empty$/],
      [`-----BEGIN NATS USER JWT-----\neyJ0\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${USER_SEED}\n------END USER NKEY SEED------\n`, /\.creds file .* the seed alone/],
      [`${USER_SEED}\n${USER_SEED}\n`, /more than one line/],
      [USER_PUBLIC, /^it holds a user public key \(U…\), not a seed \(SU…\)$/],
      ['this is not a seed', /more than one line or word/],
      [USER_SEED.toLowerCase(), /^character 1 of 58 is not one of A-Z and 2-7/],
      ['SUgarbage', /^character 3 of 9 is not one of A-Z and 2-7/],
      [USER_SEED.slice(0, 40), /^it has 40 characters; an nkey seed has 58, starting SU$/],
      [`U${USER_SEED.slice(1)}`, /^it does not start with S/],
      [ACCOUNT_SEED, /^it is an account seed \(SA…\), not a user seed \(SU…\)$/],
      [`SUZ${USER_SEED.slice(3)}`, /prefix is not that of an nkey user seed/],
      [flipped, /^its checksum does not match: the seed is damaged or mistyped$/],
    ];
    for (const [text, message] of rows) {
      const problem = nkeySeedProblem(text);
      expect(problem, JSON.stringify(text)).toMatch(message);
      if (text.trim().length > 4) expect(problem).not.toContain(text.trim().slice(2, 12));
    }
  });

  it('throws MV_ERR_KEY_INVALID naming the file, what is wrong and where the right one comes from', () => {
    const thrown = (read: () => string) => {
      try {
        readNkeySeed('/etc/medvault/credentials/site.nk', read, 'copy site.nk from the enrolment bundle');
      } catch (err) {
        return err as MedvaultError;
      }
      throw new Error('did not throw');
    };
    const bad = thrown(() => 'SUgarbage\n');
    expect(bad).toBeInstanceOf(MedvaultError);
    expect(bad.code).toBe(codes.KEY_INVALID);
    expect(bad.message).toBe('/etc/medvault/credentials/site.nk: not a NATS nkey seed: character 3 of 9 is not one of A-Z and 2-7, so it is not an nkey seed (58 characters, starting SU); copy site.nk from the enrolment bundle');
    const missing = thrown(() => { throw Object.assign(new Error("ENOENT: no such file or directory, open '/etc/medvault/credentials/site.nk'"), { code: 'ENOENT' }); });
    expect(missing.code).toBe(codes.KEY_INVALID);
    expect(missing.message).toBe('/etc/medvault/credentials/site.nk: cannot read the NATS nkey seed: no such file; copy site.nk from the enrolment bundle');
  });
});
