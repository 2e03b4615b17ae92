import type { Principal } from '../auth/principal.js';
import type { AdmissionSubject } from './admission.js';

/** An API-key caller is counted against its key (with the key's limits), anyone else against their user. */
export const subjectOf = (principal: Principal, userId: string): AdmissionSubject => ({
  key: principal.method === 'api_key' ? `key:${principal.key_id}` : `user:${encodeURIComponent(userId)}`,
  limits: principal.limits,
});
