import { describe, expect, it } from 'vitest';
import { JOB_LIMITS, JobSubmitSchema, ownerKey, JobSubjects } from '../contracts/jobs.js';
import { splitSections } from './sections.js';
import { signWebhook, verifyWebhook, WebhookPolicy } from './webhook.js';

describe('splitSections', () => {
  const para = (n: number, len: number) => `Paragraph ${n}. ${'Evidence and actions for this area. '.repeat(Math.ceil(len / 36))}`.slice(0, len);

  it('packs paragraphs whole into sections of at most the limit, losing nothing', () => {
    const doc = Array.from({ length: 40 }, (_, i) => para(i, 700)).join('\n\n');
    const sections = splitSections(doc, 3_000);
    expect(sections.length).toBeGreaterThan(5);
    for (const s of sections) expect(s.length).toBeLessThanOrEqual(3_000);
    expect(sections.join('\n\n')).toBe(doc);
  });

  it('starts a section at a heading once the current one is half full', () => {
    const doc = ['# One', para(1, 1_800), '# Two', para(2, 300), '# Three', para(3, 300)].join('\n\n');
    const sections = splitSections(doc, 3_000);
    expect(sections.map((s) => s.split('\n')[0])).toEqual(['# One', '# Two']);
  });

  it('cuts a paragraph longer than the limit at sentence ends', () => {
    const long = 'A sentence about the plan. '.repeat(400);
    const sections = splitSections(long, 2_000);
    for (const s of sections) {
      expect(s.length).toBeLessThanOrEqual(2_000);
      expect(s.endsWith('.')).toBe(true);
    }
    expect(sections.join(' ').replace(/\s+/g, ' ')).toBe(long.trim());
  });

  it('is deterministic, and handles CRLF and blank input', () => {
    const doc = 'a\r\n\r\nb\r\n\r\n\r\nc';
    expect(splitSections(doc, 100)).toEqual(splitSections(doc, 100));
    expect(splitSections(doc, 100)).toEqual(['a\n\nb\n\nc']);
    expect(splitSections('  \n\n ', 100)).toEqual([]);
    expect(() => splitSections('x', 10)).toThrow(RangeError);
  });
});

describe('WebhookPolicy', () => {
  it('allows only loopback by default', () => {
    const p = WebhookPolicy.fromList(undefined);
    for (const ok of ['http://127.0.0.1:8080/hook', 'https://localhost/x', 'http://[::1]:9/']) expect(p.check(ok).href).toBe(new URL(ok).href);
    for (const bad of ['http://example.com/', 'http://10.0.0.1/', 'http://169.254.169.254/latest', 'http://127.0.0.1.nip.io/']) {
      expect(() => p.check(bad), bad).toThrow(expect.objectContaining({ code: 'webhook_not_allowed' }));
    }
  });

  it('takes hosts, host:port and *.domain entries, and refuses other schemes and credentials', () => {
    const p = WebhookPolicy.fromList('hooks.school.example, api.partner.example:8443, *.lms.example');
    expect(() => p.check('https://hooks.school.example/a')).not.toThrow();
    expect(() => p.check('https://api.partner.example:8443/a')).not.toThrow();
    expect(() => p.check('https://api.partner.example/a')).toThrow();
    expect(() => p.check('https://eu.lms.example/a')).not.toThrow();
    expect(() => p.check('https://lms.example/a')).toThrow();
    expect(() => p.check('https://evil-lms.example/a')).toThrow();
    expect(() => p.check('ftp://hooks.school.example/a')).toThrow();
    expect(() => p.check('https://u:p@hooks.school.example/a')).toThrow();
    expect(() => p.check('not a url')).toThrow();
  });
});

describe('webhook signatures', () => {
  const secret = 'a-shared-secret-of-the-receiver';
  const body = '{"id":"job-1.job.completed"}';

  it('verify with the secret, within the tolerance, for the exact body', () => {
    const header = signWebhook(secret, body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook(secret, header, body, { nowSec: 1_700_000_100 })).toBe(true);
    expect(verifyWebhook(secret, header, `${body} `, { nowSec: 1_700_000_100 })).toBe(false);
    expect(verifyWebhook('another-secret', header, body, { nowSec: 1_700_000_100 })).toBe(false);
    expect(verifyWebhook(secret, header, body, { nowSec: 1_700_001_000 })).toBe(false);
    expect(verifyWebhook(secret, 't=1,v1=zz', body)).toBe(false);
    expect(verifyWebhook(secret, undefined, body)).toBe(false);
  });
});

describe('job submissions', () => {
  it('apply defaults and hold the limits', () => {
    const ok = JobSubmitSchema.parse({ user_id: 'u', kind: 'batch_alignment', input: { items: [{ text: 'a lesson' }] } });
    expect(ok).toMatchObject({ mode: 'strategist', use_cache: true });
    expect(JobSubmitSchema.safeParse({ user_id: 'u', kind: 'batch_alignment', input: { items: [{ text: 'x', extra: 1 }] } }).success).toBe(false);
    expect(
      JobSubmitSchema.safeParse({ user_id: 'u', kind: 'batch_alignment', input: { items: Array(JOB_LIMITS.itemsMax + 1).fill({ text: 'x' }) } }).success,
    ).toBe(false);
    expect(JobSubmitSchema.safeParse({ user_id: 'u', kind: 'document_audit', input: { document: 'x'.repeat(JOB_LIMITS.documentMaxChars + 1) } }).success).toBe(false);
  });

  it('name owners in subjects by a hash: ids with . : @ never reach a subject', () => {
    const subject = JobSubjects.events('ms.rivera@school.example');
    expect(subject).toMatch(/^jobs\.v1\.events\.[0-9a-f]{32}$/);
    expect(ownerKey('a.b')).not.toBe(ownerKey('a:b'));
  });
});
