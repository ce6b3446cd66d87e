/** A secret in a config file: `${ENV_VAR}`, `{ env: NAME }`, `{ file: PATH }` (or, warned about, inline). */
import { z } from 'zod';

export const SecretRefSchema = z.union([
  z.string().min(1, 'expected a secret reference such as ${OPENAI_API_KEY}'),
  z.strictObject({ env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'expected an environment variable name') }),
  z.strictObject({ file: z.string().min(1, 'expected a file path') }),
]);
export type SecretRef = z.infer<typeof SecretRefSchema>;
