import { parseArgs } from 'node:util';
import { SignJWT } from 'jose';
import { UserIdSchema } from '@actionedx/shared';

/**
 * `npm run token -- --user alice [--role admin] [--ttl 3600]`: a development JWT signed with JWT_SECRET
 * (HS256), for JWT_ISSUER and JWT_AUDIENCE (the gateway's defaults when unset). Prints the token alone,
 * so that `TOKEN=$(npm run -s token -- --user alice)` works. Production tokens come from your identity
 * provider (JWT_JWKS_URL) or are API keys an administrator creates.
 */
const USAGE = 'usage: npm run -s token -- --user <user_id> [--role user|admin] [--ttl <seconds>]';

function fail(message: string): never {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    user: { type: 'string' },
    role: { type: 'string', default: 'user' },
    ttl: { type: 'string', default: '3600' },
  },
  strict: true,
});

const secret = process.env.JWT_SECRET;
if (secret === undefined || secret.length < 32) fail('JWT_SECRET must be set (at least 32 characters), as for the gateway.');
if (!UserIdSchema.safeParse(values.user).success) fail('--user: 1-128 letters, digits or _ . : @ -');
if (values.role !== 'user' && values.role !== 'admin') fail('--role: user or admin');
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl < 1 || ttl > 30 * 86_400) fail('--ttl: whole seconds, at most 30 days');

const token = await new SignJWT({ role: values.role })
  .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
  .setSubject(values.user!)
  .setIssuer(process.env.JWT_ISSUER || 'actionedx')
  .setAudience(process.env.JWT_AUDIENCE || 'actionedx-api')
  .setIssuedAt()
  .setExpirationTime(`${ttl}s`)
  .sign(new TextEncoder().encode(secret));
console.log(token);
