/** Request input is parsed with zod; a failure is MV_ERR_MESSAGE_INVALID naming the member (400). */
import type { z } from 'zod';
import { MedvaultError, codes } from '@medvault/protocol';

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value ?? {});
  if (!r.success) {
    const issue = r.error.issues[0]!;
    throw new MedvaultError(codes.MESSAGE_INVALID, `${what}: ${issue.path.join('.') || '(body)'}: ${issue.message}`);
  }
  return r.data;
}
