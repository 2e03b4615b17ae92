import { JOB_LIMITS } from '../contracts/jobs.js';

const HEADING = /^(#{1,6}\s|[A-Z0-9][^\n]{0,80}:\s*$)/;

/**
 * A long document as sections of at most `maxChars`, each audited by one model call. Paragraphs (blocks between
 * blank lines) are packed whole; a heading starts a new section once the current one is half full, so sections
 * follow the document's structure without turning every heading into a model call. A paragraph longer than
 * `maxChars` is cut at sentence ends (or, failing that, hard). Deterministic: the same document always gives
 * the same sections (and so the same cache keys).
 */
export function splitSections(document: string, maxChars: number = JOB_LIMITS.sectionMaxChars): string[] {
  if (!Number.isSafeInteger(maxChars) || maxChars < 100) throw new RangeError(`maxChars must be an integer >= 100, got ${maxChars}`);
  const paragraphs = document
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .flatMap((p) => (p.length <= maxChars ? [p] : cutLong(p, maxChars)));
  const sections: string[] = [];
  let current = '';
  for (const p of paragraphs) {
    const joined = current ? `${current}\n\n${p}` : p;
    const headingBreak = current.length >= maxChars / 2 && HEADING.test(p);
    if (current && (joined.length > maxChars || headingBreak)) {
      sections.push(current);
      current = p;
    } else {
      current = joined;
    }
  }
  if (current) sections.push(current);
  return sections;
}

/** A paragraph longer than `maxChars`, cut after the last sentence end that fits, else at `maxChars`. */
function cutLong(text: string, maxChars: number): string[] {
  const out: string[] = [];
  let rest = text;
  while (rest.length > maxChars) {
    const window = rest.slice(0, maxChars);
    const end = Math.max(window.lastIndexOf('. '), window.lastIndexOf('.\n'), window.lastIndexOf('? '), window.lastIndexOf('! '));
    const at = end >= maxChars / 2 ? end + 1 : maxChars;
    out.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trim();
  }
  if (rest) out.push(rest);
  return out;
}
