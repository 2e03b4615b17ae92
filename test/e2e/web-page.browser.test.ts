import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import { TEST_AUTH, mintToken, sampleDocument, startRedis, startService, startStack, type ServiceProcess, type Stack } from '@actionedx/testkit';
import { WAIT, launch, shot, signIn } from './browser.js';

/**
 * The gateway's web page (`GET /`) in Debian's Chromium, headless, against the embedded platform (the open demo)
 * and against the distributed stack (authentication on): answers stream into the page chunk by chunk, the mode
 * switches, a job's progress bar reaches 100 %, the operator view shows the cache to an administrator. Screenshots
 * go to test-results/web/ (not committed). Nothing is downloaded: Chromium is the Debian package.
 */

/** The mock model's pace in these tests: slow enough that an answer arrives in many frames, fast enough for a test. */
const PACE = { MOCK_LLM_TTFT_MS: '100', MOCK_LLM_TOKENS_PER_SECOND: '60', MOCK_LLM_COMPLETION_TOKENS: '40' };

/** A page that records what would be a defect on any screen: script errors, CSP refusals, console errors. */
async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${String(err)}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // The page's probes answer 4xx by design, and the browser logs any 4xx: is a credential needed, is it
    // accepted (401 on /api/websocket/stats, /api/sessions), is it an administrator's (403 on /api/cache/stats).
    // Nothing else may be logged.
    const { url: from } = msg.location();
    const probe = /status of 401/.test(msg.text()) ? /^\/api\/(websocket\/stats|sessions)$/ : /status of 403/.test(msg.text()) ? /^\/api\/cache\/stats$/ : undefined;
    if (probe?.test(new URL(from || 'http://x/').pathname)) return;
    problems.push(`console: ${msg.text()} (${from})`);
  });
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP refused ${e.blockedURI} (${e.violatedDirective})`));
  });
  await page.goto(url, { waitUntil: 'load', timeout: 10_000 });
  return { page, problems };
}


/** `body` on the page at `url` in a fresh context; then the page must have logged no problem. The context is closed either way. */
async function inPage(browser: Browser, url: string, body: (page: Page) => Promise<void>, options?: BrowserContextOptions): Promise<void> {
  const context = await browser.newContext(options);
  try {
    const { page, problems } = await openPage(context, url);
    await body(page);
    expect(problems).toEqual([]);
  } finally {
    await context.close();
  }
}
/**
 * Sends a message from the composer and watches the answer bubble: the length of its text at every DOM change
 * while it streams, then the finished bubble's text and figures.
 */
async function sendAndWatch(page: Page, message: string): Promise<{ lengths: number[]; text: string; meta: string; cached: boolean }> {
  const before = await page.locator('#log .msg.assistant').count();
  await page.evaluate(() => {
    const w = window as unknown as { __lengths: number[]; __observer?: MutationObserver };
    w.__lengths = [];
    w.__observer?.disconnect();
    const log = document.getElementById('log')!;
    w.__observer = new MutationObserver(() => {
      const streaming = log.querySelector('.msg.assistant.streaming .text');
      if (streaming) w.__lengths.push(streaming.textContent.length);
    });
    w.__observer.observe(log, { childList: true, subtree: true, characterData: true });
  });
  await page.fill('#message', message);
  await page.press('#message', 'Enter');
  const answer = page.locator('#log .msg.assistant').nth(before);
  await answer.locator('.meta').waitFor(WAIT);
  await expect.poll(() => answer.getAttribute('aria-busy'), WAIT).toBe('false');
  const lengths = await page.evaluate(() => (window as unknown as { __lengths: number[] }).__lengths);
  return {
    lengths,
    text: (await answer.locator('.text').textContent()) ?? '',
    meta: (await answer.locator('.meta').textContent()) ?? '',
    cached: (await answer.getAttribute('data-cached')) === 'true',
  };
}

/** Distinct partial lengths seen while streaming, in the order seen. */
const partials = (lengths: number[]) => lengths.filter((n, i) => n > 0 && n !== lengths[i - 1]);

/** Runs a document audit from the form; returns every value its progress bar took, in order. */
async function runJob(page: Page, title: string): Promise<number[]> {
  // Every value the job's bar takes, recorded in the page as the DOM changes (no polling to miss one).
  await page.evaluate(() => {
    const w = window as unknown as { __progress: number[] };
    w.__progress = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (r.target instanceof HTMLProgressElement && r.attributeName === 'value') w.__progress.push(Number(r.target.getAttribute('value')));
      }
    }).observe(document.getElementById('job-list')!, { subtree: true, attributes: true, attributeFilter: ['value'] });
  });
  await page.selectOption('#job-kind', 'document_audit');
  await page.fill('#job-title', title);
  await page.fill('#job-input', sampleDocument(3, 1_200, ` ${title}`));
  await page.click('#job-form button[type=submit]');
  const row = page.locator('#job-list li', { hasText: title });
  await row.waitFor(WAIT);
  await expect.poll(() => row.getAttribute('data-state'), { timeout: 30_000 }).toBe('completed');
  expect(await row.locator('progress').getAttribute('value')).toBe('100');
  return page.evaluate(() => (window as unknown as { __progress: number[] }).__progress);
}

/** The bar moved forward through values between 0 and 100 before it was full. */
function expectProgressed(seen: number[]): void {
  expect(seen.at(-1), JSON.stringify(seen)).toBe(100);
  expect(seen.some((v) => v > 0 && v < 100), JSON.stringify(seen)).toBe(true);
  expect(seen, 'never backwards').toEqual([...seen].sort((a, b) => a - b));
}

describe('the web page on the embedded platform (open demo)', () => {
  let app: ServiceProcess | undefined;
  let queue: Awaited<ReturnType<typeof startRedis>> | undefined;
  let browser: Browser | undefined;
  let setupError: unknown;
  const ready = () => {
    if (setupError !== undefined) throw setupError;
  };

  beforeAll(async () => {
    try {
      queue = await startRedis(undefined, { args: ['--maxmemory-policy', 'noeviction'] });
      const [started, launched] = await Promise.allSettled([startService('embedded', { ...PACE, QUEUE_REDIS_URL: queue.url }), launch()]);
      if (started.status === 'fulfilled') app = started.value;
      if (launched.status === 'fulfilled') browser = launched.value;
      if (started.status === 'rejected') throw started.reason;
      if (launched.status === 'rejected') throw launched.reason;
    } catch (err) {
      setupError = err;
    }
  }, 30_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await app?.stop(2000);
    await queue?.stop();
  });

  it('is served at / with its own strict policy, and names its URL at start', async () => {
    ready();
    const res = await fetch(`${app!.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const js = await fetch(`${app!.url}/assets/app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect(js.headers.get('etag')).toBeTruthy();
    // A browser's revalidation (fetch would add `cache-control: no-cache` to a conditional request of its own).
    const again = await fetch(`${app!.url}/assets/app.js`, { headers: { 'if-none-match': js.headers.get('etag')!, 'cache-control': 'max-age=0' } });
    expect(again.status).toBe(304);
    expect((await fetch(`${app!.url}/assets/missing.js`)).status).toBe(404);
    expect(app!.logs.some((l) => typeof l.url === 'string' && l.url.endsWith(`:${app!.port}/`))).toBe(true);
  });

  it('streams an answer into the page chunk by chunk, with its model and cost; the same question again is marked cached', async () => {
    ready();
    await inPage(browser!, `${app!.url}/`, async (page) => {
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      const question = `How do I run a 9-pillar audit? ${Date.now()}`;
      const first = await sendAndWatch(page, question);
      // Many DOM updates while streaming, each one longer: tokens arrived one after another.
      expect(partials(first.lengths).length, JSON.stringify(first.lengths)).toBeGreaterThanOrEqual(3);
      expect(partials(first.lengths)).toEqual([...partials(first.lengths)].sort((a, b) => a - b));
      expect(first.text.length).toBeGreaterThan(20);
      expect(first.meta).toMatch(/model \S+/);
      expect(first.meta).toMatch(/cost \$/);
      expect(first.cached).toBe(false);
      // Screen readers get the whole answer once (the log itself is not live: chunks are not read out one by one).
      expect(await page.getAttribute('#log', 'aria-live')).toBe('off');
      expect(await page.textContent('#announce')).toBe(`Assistant: ${first.text}`);
      await shot(page, 'embedded-chat');

      // A new session (no history), the same question: the cache answers, and the page says so.
      await page.click('#new-session');
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      const second = await sendAndWatch(page, question);
      expect(second.cached).toBe(true);
      expect(second.meta).toContain('cached');
      expect(second.text).toBe(first.text);
      // Both sessions are listed, and the first one's transcript comes back when it is opened again.
      expect(await page.locator('#session-list li').count()).toBe(2);
      await page.locator('#session-list button').nth(1).click();
      await expect.poll(() => page.locator('#log .msg.user').first().textContent(), WAIT).toBe(question);
    });
  }, 40_000);

  it('switches the mode: the server confirms it and the next answer is in that mode', async () => {
    ready();
    await inPage(browser!, `${app!.url}/`, async (page) => {
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      await page.selectOption('#mode', 'oracle');
      await page.locator('#log .msg.system', { hasText: /oracle/i }).waitFor(WAIT);
      await page.selectOption('#task-type', 'strategy_audit');
      const answer = await sendAndWatch(page, `What does the oracle see? ${Date.now()}`);
      expect(answer.meta).toContain('oracle');
      expect(answer.meta).toContain('strategy_audit');
    });
  }, 30_000);

  it('runs a background job and its progress bar reaches 100 %', async () => {
    ready();
    await inPage(browser!, `${app!.url}/`, async (page) => {
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      expectProgressed(await runJob(page, `Improvement plan ${Date.now()}`));
      await shot(page, 'embedded-job');
    });
  }, 40_000);

  it('shows the operator view (the open demo is an administrator): cache figures, invalidation, connections', async () => {
    ready();
    await inPage(browser!, `${app!.url}/`, async (page) => {
      await page.locator('#ops').waitFor({ state: 'visible', ...WAIT });
      await expect.poll(() => page.textContent('#ops-cache'), WAIT).toMatch(/hits\d+/);
      expect(await page.textContent('#ops-cache')).toMatch(/backendmemory/);
      await expect.poll(() => page.textContent('#ops-connections'), WAIT).toMatch(/live WebSockets \(this gateway\)[1-9]/);
      expect(await page.textContent('#ops-breakers')).toMatch(/cache \(memory\): closed/);
      await page.click('#invalidate-form button[type=submit]');
      await expect.poll(() => page.textContent('#inv-result'), WAIT).toMatch(/^Deleted \d+ cached answers\.$/);
      await expect.poll(() => page.textContent('#ops-cache'), WAIT).toMatch(/keys0/);
      await shot(page, 'embedded-operator');
    });
  }, 30_000);

  it('fits a phone-sized screen: no sideways scrolling, the composer reachable by keyboard', async () => {
    ready();
    await inPage(browser!, `${app!.url}/`, async (page) => {
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      const widths = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, view: window.innerWidth }));
      expect(widths.scroll).toBeLessThanOrEqual(widths.view);
      // The skip link is the first stop and leads to the message box.
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.textContent)).toMatch(/Skip to the message box/);
      for (const id of ['message', 'mode', 'task-type', 'credential', 'job-input']) {
        expect(await page.locator(`label[for="${id}"]`).count(), `a label for #${id}`).toBe(1);
      }
      await shot(page, 'embedded-phone');
    }, { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  }, 30_000);
});

describe('the web page on the distributed stack (authentication on)', () => {
  let stack: Stack | undefined;
  let queue: Awaited<ReturnType<typeof startRedis>> | undefined;
  let browser: Browser | undefined;
  let setupError: unknown;
  const ready = () => {
    if (setupError !== undefined) throw setupError;
  };

  beforeAll(async () => {
    try {
      queue = await startRedis(undefined, { args: ['--maxmemory-policy', 'noeviction'] });
      const jobsEnv = { QUEUE_REDIS_URL: queue.url };
      const [started, launched] = await Promise.allSettled([
        startStack({ orchestrators: 1, orchestratorEnv: { ...jobsEnv, ROLE: 'chat,jobs' }, gatewayEnv: jobsEnv, mockLlmEnv: PACE }),
        launch(),
      ]);
      if (started.status === 'fulfilled') stack = started.value;
      if (launched.status === 'fulfilled') browser = launched.value;
      if (started.status === 'rejected') throw started.reason;
      if (launched.status === 'rejected') throw launched.reason;
    } catch (err) {
      setupError = err;
    }
  }, 45_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await stack?.stop();
    await queue?.stop();
  });


  it('asks for a credential, refuses a bad one, then streams an answer over the WebSocket; no operator view for a user', async () => {
    ready();
    await inPage(browser!, `${stack!.url}/`, async (page) => {
      await page.locator('#sign-in').waitFor({ state: 'visible', ...WAIT });
      expect(await page.isVisible('#app')).toBe(false);
      await page.fill('#credential', 'not-a-token');
      await page.click('#sign-in-form button[type=submit]');
      await expect.poll(() => page.textContent('#sign-in-error'), WAIT).toMatch(/refused/);

      await signIn(page, await mintToken('web-user', { ttlS: 600 }));
      expect(await page.textContent('#who')).toContain('web-user');
      const answer = await sendAndWatch(page, `Stream across the bus ${Date.now()}`);
      expect(partials(answer.lengths).length, JSON.stringify(answer.lengths)).toBeGreaterThanOrEqual(3);
      expect(answer.meta).toMatch(/model \S+/);
      expect(answer.meta).toMatch(/cost \$/);
      await page.selectOption('#mode', 'ally');
      await page.locator('#log .msg.system', { hasText: /ally/i }).waitFor(WAIT);
      expect(await page.isVisible('#ops')).toBe(false);
      await shot(page, 'distributed-chat');
    });
  }, 40_000);

  it("finds the user's sessions and their history on the server from a new browser", async () => {
    ready();
    // A session this browser has never seen: a turn another client had (REST, the same user).
    const token = await mintToken('web-history', { ttlS: 600 });
    const message = `Remember the literacy plan ${Date.now()}`;
    const earlierTurn = await fetch(`${stack!.url}/api/assistant/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ message, session_id: `elsewhere-${Date.now()}` }),
    });
    expect(earlierTurn.status).toBe(200);
    await inPage(browser!, `${stack!.url}/`, async (page) => {
      await signIn(page, token);
      // Listed by the server, titled by its first message; opened, its turns come from the server too.
      const earlier = page.locator('#session-list button', { hasText: message.slice(0, 40) });
      await earlier.waitFor(WAIT);
      await earlier.click();
      await expect.poll(() => page.getAttribute('#log', 'data-history'), WAIT).toBe('server');
      expect(await page.locator('#log .msg.user').first().textContent()).toBe(message);
      expect(await page.locator('#log .msg.assistant .meta').first().textContent()).toMatch(/model \S+/);
    });
  }, 30_000);

  it('runs a job on the job workers and its progress bar reaches 100 %', async () => {
    ready();
    await inPage(browser!, `${stack!.url}/`, async (page) => {
      await signIn(page, await mintToken('web-jobs', { ttlS: 600 }));
      expectProgressed(await runJob(page, `Distributed plan ${Date.now()}`));
      await shot(page, 'distributed-job');
    });
  }, 45_000);

  it('shows an administrator the operator view: the cluster-wide cache figures from Redis', async () => {
    ready();
    await inPage(browser!, `${stack!.url}/`, async (page) => {
      await signIn(page, TEST_AUTH.adminKey);
      await page.locator('#ops').waitFor({ state: 'visible', ...WAIT });
      await expect.poll(() => page.textContent('#ops-cache'), WAIT).toMatch(/backendredis/);
      expect(await page.textContent('#ops-cache')).toMatch(/hits\d+/);
      await expect.poll(() => page.textContent('#ops-connections'), WAIT).toMatch(/live WebSockets \(this gateway\)[1-9]/);
      await expect.poll(() => page.textContent('#ops-queues'), WAIT).toMatch(/jobs \w+\d+/);
      // The model targets' breakers from an orchestrator (the gateway's own metrics have none in this mode).
      await expect.poll(() => page.textContent('#ops-breakers'), WAIT).toMatch(/model target [\w.-]+: closed/);
      expect(await page.textContent('#ops-breakers')).toMatch(/cache \(redis\): closed/);
      await shot(page, 'distributed-operator');
    });
  }, 30_000);
});
