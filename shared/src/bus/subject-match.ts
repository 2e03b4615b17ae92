/** NATS subject matching: `*` is one token, a final `>` is one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  return pattern === subject || tokensMatch(pattern.split('.'), subject.split('.'));
}

/** The same on subjects already split into tokens. */
export function tokensMatch(p: readonly string[], s: readonly string[]): boolean {
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}
