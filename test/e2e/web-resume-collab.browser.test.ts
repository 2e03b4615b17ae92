import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { adminHeaders, mintToken, startService, startStack, type ServiceProcess, type Stack } from '@actionedx/testkit';
import { WAIT, launch, shot, signIn } from './browser.js';

/**
 * The web page's resume and collaboration parts in Debian's Chromium, headless. A reload mid-answer resumes the
 * answer: on the embedded platform (open demo), and on the distributed stack onto the other gateway (one origin
 * in front of two gateways). Two users in two browser contexts share one collaboration session, each on a gateway
 * of their own (authentication on): presence, typing, a turn and its streamed answer in both pages, a reload of
 * either member mid-answer. Screenshots go to test-results/web/ (not committed).
 */

/** An answer of about four seconds, in about forty chunks: a reload lands in its middle. */
const SLOW = { MOCK_LLM_TTFT_MS: '100', MOCK_LLM_TOKENS_PER_SECOND: '10', MOCK_LLM_COMPLETION_TOKENS: '40' };

/** A frame as a socket of the page carried it; `socket`: which of the page's sockets, 0 the first. */
type Frame = { type: string; socket: number; [k: string]: unknown };

/**
 * A page that records script errors, console errors (but the page's expected 401 probes) and every frame its
 * sockets receive and send, in order, across reloads; and, in the page, the last text of the streaming answer
 * before it was finished (what the chunks made, before the `response` frame replaced it).
 */
async function openPage(context: BrowserContext, url: string): Promise<{ page: Page; problems: string[]; received: Frame[]; sent: Frame[] }> {
  const page = await context.newPage();
  const problems: string[] = [];
  const received: Frame[] = [];
  const sent: Frame[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${String(err)}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const { url: from } = msg.location();
    if (/status of 401/.test(msg.text()) && /^\/api\/(websocket\/stats|sessions)$/.test(new URL(from || 'http://x/').pathname)) return;
    if (/status of 403/.test(msg.text()) && /^\/api\/cache\/stats$/.test(new URL(from || 'http://x/').pathname)) return;
    // No queue Redis in these stacks: the job list answers 503 (the page says jobs are not available).
    if (/status of 503/.test(msg.text()) && /^\/api\/jobs$/.test(new URL(from || 'http://x/').pathname)) return;
    problems.push(`console: ${msg.text()} (${from})`);
  });
  let sockets = 0;
  page.on('websocket', (ws) => {
    const socket = sockets++;
    const parse = (into: Frame[]) => (data: { payload: string | Buffer }) => {
      try {
        into.push({ ...(JSON.parse(String(data.payload)) as Frame), socket });
      } catch {
        /* not a JSON frame */
      }
    };
    ws.on('framereceived', parse(received));
    ws.on('framesent', parse(sent));
  });
  await page.addInitScript(() => {
    const w = window as unknown as { __streamed: string[] };
    w.__streamed = [];
    document.addEventListener('DOMContentLoaded', () => {
      const log = document.getElementById('log')!;
      new MutationObserver(() => {
        const streaming = log.querySelectorAll('.msg.assistant.streaming .text');
        streaming.forEach((t, i) => (w.__streamed[i] = t.textContent ?? ''));
      }).observe(log, { childList: true, subtree: true, characterData: true });
    });
  });
  await page.goto(url, { waitUntil: 'load', timeout: 10_000 });
  return { page, problems, received, sent };
}

const framesOf = (frames: Frame[], type: string, socket?: number) => frames.filter((f) => f.type === type && (socket === undefined || f.socket === socket));

/**
 * After a reload mid-answer (the page's socket 0 got part of it): the reloaded page asked for the rest on its
 * socket 1, from the last chunk it kept, and what the chunks made on screen (the kept part, then the rest) is the
 * whole answer of the `response` frame, in one bubble. A single-user session's socket gets the chunks past
 * `last_seq` once each, in order, and one `response`. A shared session's gets the session's live frames of the
 * turn besides the replay (it is a member's socket): the page must show each part once all the same.
 * Returns the whole answer.
 */
async function expectResumed(page: Page, received: Frame[], sent: Frame[], requestId: string, shared = false): Promise<string> {
  const answer = page.locator('#log .msg.assistant').last();
  await expect.poll(() => answer.getAttribute('aria-busy'), { timeout: 20_000 }).toBe('false');
  const resume = framesOf(sent, 'resume')[0];
  expect(resume, JSON.stringify(sent)).toMatchObject({ type: 'resume', request_id: requestId, socket: 1 });
  const lastSeq = resume!.last_seq as number;
  const before = framesOf(received, 'stream_chunk', 0);
  expect(framesOf(received, 'response', 0), 'the answer was not over before the reload').toEqual([]);
  expect(lastSeq).toBeGreaterThanOrEqual(0);
  // The recorder's events stop with the page: a chunk that reached the page as it unloaded may be missing from
  // `before` (one at most). The page's own text, checked below, covers it.
  expect(lastSeq).toBeLessThanOrEqual(before.length);

  const after = framesOf(received, 'stream_chunk', 1);
  const responses = framesOf(received, 'response', 1);
  expect(responses.length).toBeGreaterThanOrEqual(1);
  expect(new Set(responses.map((r) => r.request_id))).toEqual(new Set([requestId]));
  const whole = String(responses[0]!.response);
  if (!shared) {
    expect(after.map((f) => f.seq)).toEqual(after.map((_, i) => lastSeq + 1 + i));
    expect(responses).toHaveLength(1);
  }
  // Every part of the answer came to the page, the same wherever it came from, and they make the whole answer.
  const parts = new Map<number, string>();
  for (const f of [...before.slice(0, lastSeq + 1), ...after]) {
    const seq = f.seq as number;
    if (parts.has(seq)) expect(f.content, `chunk ${seq} again`).toBe(parts.get(seq));
    parts.set(seq, String(f.content));
  }
  const seqs = [...parts.keys()].sort((x, y) => x - y);
  if (parts.has(lastSeq)) {
    expect(seqs).toEqual(seqs.map((_, i) => i));
    expect(seqs.map((seq) => parts.get(seq)).join('')).toBe(whole);
  } else {
    // Every seq but the one the recorder lost; the kept part, then the missing chunk, then the replayed rest.
    expect(seqs).toEqual(seqs.map((_, i) => (i < lastSeq ? i : i + 1)));
    const kept = seqs.filter((seq) => seq < lastSeq).map((seq) => parts.get(seq)).join('');
    const rest = seqs.filter((seq) => seq > lastSeq).map((seq) => parts.get(seq)).join('');
    expect(whole.startsWith(kept) && whole.endsWith(rest) && whole.length > kept.length + rest.length).toBe(true);
  }

  // On screen: the text the chunks made before the response frame replaced it, and the final text.
  const streamed = await page.evaluate(() => (window as unknown as { __streamed: string[] }).__streamed);
  expect(streamed.at(-1)).toBe(whole);
  expect(await answer.locator('.text').textContent()).toBe(whole);
  expect(await answer.getAttribute('data-request-id')).toBe(requestId);
  expect(await answer.locator('.meta').textContent()).toContain('resumed');
  expect(await page.locator('#log .msg.assistant').count(), 'one answer bubble').toBe(1);
  return whole;
}

/**
 * One origin for the page in front of several gateways: a TCP forwarder to the gateway of the moment. `switchTo`
 * sends the next connections to another gateway and cuts the open ones (kept-alive HTTP, the WebSocket), as a
 * load balancer that lost its first replica would.
 */
async function frontDoor(target: string): Promise<{ url: string; switchTo(target: string): void; close(): Promise<void> }> {
  let port = Number(new URL(target).port);
  const open = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      open.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        open.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    url: `http://127.0.0.1:${address.port}`,
    switchTo(next) {
      port = Number(new URL(next).port);
      for (const s of open) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('reload mid-answer on the embedded platform (open demo)', () => {
  let app: ServiceProcess | undefined;
  let browser: Browser | undefined;
  let setupError: unknown;
  const ready = () => {
    if (setupError !== undefined) throw setupError;
  };

  beforeAll(async () => {
    try {
      const [started, launched] = await Promise.allSettled([startService('embedded', SLOW), launch()]);
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
  });

  it('resumes the answer after the reload: the whole answer once, nothing missing or repeated, as the server has it', async () => {
    ready();
    const context = await browser!.newContext();
    try {
      const { page, problems, received, sent } = await openPage(context, `${app!.url}/`);
      await expect.poll(() => page.textContent('#conn-status'), WAIT).toBe('Connected');
      const message = `Walk me through the nine pillars, slowly ${Date.now()}`;
      await page.fill('#message', message);
      await page.press('#message', 'Enter');

      // Some chunks, not all of them: the answer is in its middle.
      await expect.poll(() => framesOf(received, 'stream_chunk').length, WAIT).toBeGreaterThanOrEqual(5);
      const start = framesOf(received, 'stream_start')[0]!;
      const requestId = String(start.request_id);
      await page.reload({ waitUntil: 'load', timeout: 10_000 });

      const whole = await expectResumed(page, received, sent, requestId);
      expect(await page.locator('#log .msg.user').last().textContent()).toBe(message);
      await shot(page, 'embedded-resumed');

      // The server's record of the turn has the same answer.
      const sessionId = await page.getAttribute('#session-list button[aria-current="true"]', 'data-session-id');
      const user = await page.evaluate(() => localStorage.getItem('axd.user'));
      const history = (await (await fetch(`${app!.url}/api/sessions/${encodeURIComponent(sessionId!)}/history?user_id=${user}`)).json()) as {
        turns: { request_id?: string; message: string; response: string }[];
      };
      expect(history.turns.find((t) => t.message === message)?.response).toBe(whole);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 45_000);
});

describe('the distributed stack with two gateways (authentication on): shared sessions, and resume across gateways', () => {
  let stack: Stack | undefined;
  let second: ServiceProcess | undefined;
  let browser: Browser | undefined;
  let setupError: unknown;
  const ready = () => {
    if (setupError !== undefined) throw setupError;
  };

  beforeAll(async () => {
    try {
      const [started, launched] = await Promise.allSettled([startStack({ orchestrators: 1, mockLlmEnv: SLOW }), launch()]);
      if (started.status === 'fulfilled') stack = started.value;
      if (launched.status === 'fulfilled') browser = launched.value;
      if (started.status === 'rejected') throw started.reason;
      if (launched.status === 'rejected') throw launched.reason;
      second = await stack!.addGateway();
    } catch (err) {
      setupError = err;
    }
  }, 45_000);

  afterAll(async () => {
    await browser?.close().catch(() => undefined);
    await stack?.stop();
  });


  type Member = Awaited<ReturnType<typeof openPage>> & { token: string };

  /**
   * `owner` signs in on the first gateway and creates a shared session from the page; `guest` opens its
   * invitation link on the second gateway and signs in there; both are connected and see each other online.
   */
  async function shareSession(owner: string, guest: string): Promise<{ a: Member; b: Member; sessionId: string; contexts: BrowserContext[] }> {
    const contexts = [await browser!.newContext(), await browser!.newContext()];
    const tokenA = await mintToken(owner, { ttlS: 600 });
    const a = { ...(await openPage(contexts[0]!, `${stack!.url}/`)), token: tokenA };
    await signIn(a.page, tokenA);
    await a.page.click('#new-shared');
    await a.page.locator('#share-box').waitFor({ state: 'visible', ...WAIT });
    const link = await a.page.inputValue('#share-link');
    expect(link).toMatch(/#join=cs_[0-9a-f]{32}&token=/);
    const sessionId = new URLSearchParams(link.slice(link.indexOf('#') + 1)).get('join')!;
    await expect.poll(() => a.page.textContent('#conn-status'), WAIT).toBe('Connected');

    const tokenB = await mintToken(guest, { ttlS: 600 });
    const b = { ...(await openPage(contexts[1]!, link.replace(stack!.url, second!.url))), token: tokenB };
    await signIn(b.page, tokenB);
    await b.page.locator('#share-box').waitFor({ state: 'visible', ...WAIT });
    expect(await b.page.getAttribute('#session-list button[aria-current="true"]', 'data-session-id')).toBe(sessionId);
    await expect.poll(() => a.page.textContent('#members'), WAIT).toMatch(new RegExp(`${guest} · online`));
    await expect.poll(() => b.page.textContent('#members'), WAIT).toMatch(new RegExp(`${owner} · owner · online`));
    return { a, b, sessionId, contexts };
  }

  /** A gateway's count of resumes that replayed (`ai_resumes_total{outcome="ok"}`). */
  async function resumesOk(url: string): Promise<number> {
    const text = await (await fetch(`${url}/api/metrics`, { headers: adminHeaders() })).text();
    return Number(/^ai_resumes_total\{[^}]*outcome="ok"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
  }

  it('B joins by the invitation link; both see each other, B typing, and B’s turn with its streamed answer', async () => {
    ready();
    const { a, b, contexts } = await shareSession('alice', 'bob');
    try {
      // Presence: each sees the other online, and itself.
      await expect.poll(() => a.page.textContent('#members'), WAIT).toMatch(/alice \(you\) · owner · online/);
      await expect.poll(() => b.page.textContent('#members'), WAIT).toMatch(/bob \(you\) · online/);

      // Bob types: Alice sees it; not Bob himself.
      await b.page.locator('#message').pressSequentially('What should ');
      await expect.poll(() => a.page.textContent('#typing'), WAIT).toBe('bob is typing…');
      expect(await b.page.textContent('#typing')).toBe('');

      // Bob sends: his turn and the answer appear in both pages, streamed in Alice's too, the same text.
      const message = `Plan the launch together ${Date.now()}`;
      await b.page.fill('#message', message);
      await b.page.press('#message', 'Enter');
      const answerA = a.page.locator('#log .msg.assistant').last();
      const answerB = b.page.locator('#log .msg.assistant').last();
      await expect.poll(() => a.page.locator('#log .msg.user').last().textContent(), WAIT).toBe(`bob${message}`);
      expect(await a.page.locator('#log .msg.user .author').last().textContent()).toBe('bob');
      await expect.poll(() => answerB.getAttribute('aria-busy'), WAIT).toBe('false');
      await expect.poll(() => answerA.getAttribute('aria-busy'), WAIT).toBe('false');
      await expect.poll(() => a.page.textContent('#typing'), WAIT).toBe('');

      const response = framesOf(b.received, 'response')[0]!;
      const whole = String(response.response);
      expect(whole.length).toBeGreaterThan(20);
      expect(await answerB.locator('.text').textContent()).toBe(whole);
      expect(await answerA.locator('.text').textContent()).toBe(whole);
      expect(await answerA.getAttribute('data-request-id')).toBe(response.request_id);
      // Alice got it in chunks, each once and in order, and they made the whole answer on her screen too.
      const chunksA = framesOf(a.received, 'stream_chunk');
      expect(chunksA.length).toBeGreaterThanOrEqual(3);
      expect(chunksA.map((f) => f.seq)).toEqual(chunksA.map((_, i) => i));
      expect(chunksA.map((f) => f.content).join('')).toBe(whole);
      expect((await a.page.evaluate(() => (window as unknown as { __streamed: string[] }).__streamed)).at(-1)).toBe(whole);
      // One turn, one answer in each page.
      expect(await a.page.locator('#log .msg.assistant').count()).toBe(1);
      expect(await b.page.locator('#log .msg.assistant').count()).toBe(1);
      expect(await b.page.locator('#log .msg.user').count()).toBe(1);
      await shot(a.page, 'collab-owner');
      await shot(b.page, 'collab-member');
      expect(a.problems).toEqual([]);
      expect(b.problems).toEqual([]);
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  }, 60_000);

  it('B reloads mid-answer: B’s page resumes it on its gateway, A sees it whole and once; the server has the same', async () => {
    ready();
    const { a, b, sessionId, contexts } = await shareSession('carol', 'dave');
    try {
      const message = `Draft the timeline ${Date.now()}`;
      await b.page.fill('#message', message);
      await b.page.press('#message', 'Enter');
      await expect.poll(() => framesOf(b.received, 'stream_chunk').length, WAIT).toBeGreaterThanOrEqual(5);
      const requestId = String(framesOf(b.received, 'stream_start')[0]!.request_id);
      await b.page.reload({ waitUntil: 'load', timeout: 10_000 });

      const whole = await expectResumed(b.page, b.received, b.sent, requestId, true);
      expect(await b.page.locator('#log .msg.user').last().textContent()).toBe(message);
      // The reloaded page is in the same shared session, with its members.
      expect(await b.page.getAttribute('#session-list button[aria-current="true"]', 'data-session-id')).toBe(sessionId);
      await expect.poll(() => b.page.textContent('#members'), WAIT).toMatch(/carol · owner · online/);

      // Carol was not disturbed: every chunk once, in order, the whole answer.
      const answerA = a.page.locator('#log .msg.assistant').last();
      await expect.poll(() => answerA.getAttribute('aria-busy'), WAIT).toBe('false');
      const chunksA = framesOf(a.received, 'stream_chunk');
      expect(chunksA.map((f) => f.seq)).toEqual(chunksA.map((_, i) => i));
      expect(chunksA.map((f) => f.content).join('')).toBe(whole);
      expect(await answerA.locator('.text').textContent()).toBe(whole);
      expect(await a.page.locator('#log .msg.assistant').count()).toBe(1);

      // The server's record of the turn.
      const history = (await (
        await fetch(`${stack!.url}/api/sessions/${sessionId}/history`, { headers: { authorization: `Bearer ${b.token}` } })
      ).json()) as { turns: { message: string; response: string }[] };
      expect(history.turns.find((t) => t.message === message)?.response).toBe(whole);
      await shot(b.page, 'collab-resumed');
      expect(a.problems).toEqual([]);
      expect(b.problems).toEqual([]);
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  }, 60_000);

  it('A reloads in the middle of B’s answer: A’s page follows the rest of it live and ends with the whole answer, once', async () => {
    ready();
    const { a, b, contexts } = await shareSession('erin', 'frank');
    try {
      const message = `Who leads which pillar ${Date.now()}`;
      await b.page.fill('#message', message);
      await b.page.press('#message', 'Enter');
      await expect.poll(() => framesOf(a.received, 'stream_chunk').length, WAIT).toBeGreaterThanOrEqual(5);
      await a.page.reload({ waitUntil: 'load', timeout: 10_000 });

      const answerB = b.page.locator('#log .msg.assistant').last();
      await expect.poll(() => answerB.getAttribute('aria-busy'), { timeout: 20_000 }).toBe('false');
      const whole = String(framesOf(b.received, 'response')[0]!.response);
      expect(framesOf(a.received, 'response', 0), 'the answer was not over before the reload').toEqual([]);
      // Another member's answer cannot be resumed (only its sender may): the page does not ask, it follows
      // the session's live frames and the response gives it the whole answer.
      expect(framesOf(a.sent, 'resume')).toEqual([]);
      const answerA = a.page.locator('#log .msg.assistant').last();
      await expect.poll(() => answerA.getAttribute('aria-busy'), WAIT).toBe('false');
      expect(await answerA.locator('.text').textContent()).toBe(whole);
      expect(await answerA.locator('.meta.error').count()).toBe(0);
      // It streamed on: the kept part, a mark where the part nobody replays is, then the live chunks.
      expect(framesOf(a.received, 'stream_chunk', 1).length).toBeGreaterThan(0);
      const streamed = (await a.page.evaluate(() => (window as unknown as { __streamed: string[] }).__streamed)).at(-1)!;
      const [kept, live] = streamed.includes(' … ') ? streamed.split(' … ') : [streamed, ''];
      expect(whole.startsWith(kept!)).toBe(true);
      expect(whole.endsWith(live!)).toBe(true);
      expect(await a.page.locator('#log .msg.assistant').count()).toBe(1);
      expect(await a.page.locator('#log .msg.user').last().textContent()).toBe(`frank${message}`);
      await expect.poll(() => a.page.textContent('#members'), WAIT).toMatch(/frank · online/);
      // And A can take the next turn.
      expect(await a.page.isEnabled('#send')).toBe(true);
      await shot(a.page, 'collab-follows-after-reload');
      expect(a.problems).toEqual([]);
      expect(b.problems).toEqual([]);
    } finally {
      await Promise.all(contexts.map((c) => c.close()));
    }
  }, 60_000);

  it('a single-user answer resumes after a reload onto the other gateway (one origin in front of both)', async () => {
    ready();
    const door = await frontDoor(stack!.url);
    const context = await browser!.newContext();
    try {
      const token = await mintToken('grace', { ttlS: 600 });
      const { page, problems, received, sent } = await openPage(context, `${door.url}/`);
      await signIn(page, token);
      const message = `Resume me elsewhere ${Date.now()}`;
      await page.fill('#message', message);
      await page.press('#message', 'Enter');
      await expect.poll(() => framesOf(received, 'stream_chunk').length, WAIT).toBeGreaterThanOrEqual(5);
      const requestId = String(framesOf(received, 'stream_start')[0]!.request_id);

      // The first gateway is out of the way: every connection from here on goes to the second.
      const resumesBefore = await resumesOk(second!.url);
      door.switchTo(second!.url);
      await page.reload({ waitUntil: 'load', timeout: 10_000 });
      const whole = await expectResumed(page, received, sent, requestId);
      expect(await page.locator('#log .msg.user').last().textContent()).toBe(message);

      const sessionId = await page.getAttribute('#session-list button[aria-current="true"]', 'data-session-id');
      const history = (await (
        await fetch(`${second!.url}/api/sessions/${encodeURIComponent(sessionId!)}/history`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as { turns: { message: string; response: string }[] };
      expect(history.turns.find((t) => t.message === message)?.response).toBe(whole);
      // The resume was the second gateway's.
      expect(await resumesOk(second!.url)).toBe(resumesBefore + 1);
      await shot(page, 'distributed-resumed-other-gateway');
      expect(problems).toEqual([]);
    } finally {
      await context.close();
      await door.close();
    }
  }, 60_000);
});
