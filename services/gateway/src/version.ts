import { readPackageVersion } from '@actionedx/shared';

/** The gateway package's version (from its package.json, above both src/ and dist/). */
export const GATEWAY_VERSION = readPackageVersion(import.meta.url);
