import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeJson } from '../contracts/codec.js';
import { BusNoRespondersError, BusTimeoutError, type Bus, type BusMessage } from './bus.js';
import { InProcessBus } from './in-process-bus.js';
import { NatsBus } from './nats-bus.js';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const text = (m: BusMessage) => new TextDecoder().decode(m.data);

function collect(bus: Bus, subject: string, opts?: { queue?: string }) {
  const got: BusMessage[] = [];
  const sub = bus.subscribe(subject, (m) => got.push(m), opts);
  return { got, sub };
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** The same behaviour is required of every bus: the services cannot tell them apart. */
/** Handler failures are reported here instead of the console. */
const handlerErrors: string[] = [];
const onHandlerError = (err: unknown) => void handlerErrors.push(String(err));

describe.each([
  ['in-process', async (): Promise<Bus[]> => { const b = new InProcessBus(onHandlerError); return [b, b]; }],
  ['nats', async (): Promise<Bus[]> => [
    await NatsBus.connect({ url: NATS_URL, name: 'contract-a', onHandlerError }),
    await NatsBus.connect({ url: NATS_URL, name: 'contract-b', onHandlerError }),
  ]],
] as const)('bus contract: %s', (_name, make) => {
  let a: Bus;
  let b: Bus;
  const ns = `test.${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    [a, b] = (await make()) as [Bus, Bus];
  });
  afterAll(async () => {
    await a.close();
    if (b !== a) await b.close();
  });

  it('delivers bytes and headers to a subscriber, in order', async () => {
    const { got, sub } = collect(b, `${ns}.order`);
    await b.flush();
    for (let i = 0; i < 50; i++) a.publish(`${ns}.order`, encodeJson({ i }), { headers: { 'x-request-id': 'r1' } });
    await until(() => got.length === 50);
    expect(got.map((m) => JSON.parse(text(m)).i)).toEqual([...Array(50).keys()]);
    expect(got[0]!.headers['x-request-id']).toBe('r1');
    sub.unsubscribe();
  });

  it('matches * and > wildcards', async () => {
    const star = collect(b, `${ns}.w.*`);
    const tail = collect(b, `${ns}.w.>`);
    await b.flush();
    a.publish(`${ns}.w.one`, encodeJson(1));
    a.publish(`${ns}.w.one.two`, encodeJson(2));
    await until(() => tail.got.length === 2);
    await a.flush();
    await b.flush();
    expect(star.got.map(text)).toEqual(['1']);
    star.sub.unsubscribe();
    tail.sub.unsubscribe();
  });

  it('gives each message of a queue group to exactly one member', async () => {
    const q1 = collect(b, `${ns}.q`, { queue: 'workers' });
    const q2 = collect(a, `${ns}.q`, { queue: 'workers' });
    const all = collect(b, `${ns}.q`);
    await a.flush();
    await b.flush();
    for (let i = 0; i < 40; i++) a.publish(`${ns}.q`, encodeJson(i));
    await until(() => all.got.length === 40 && q1.got.length + q2.got.length === 40);
    expect(q1.got.length + q2.got.length).toBe(40);
    for (const s of [q1, q2, all]) s.sub.unsubscribe();
  });

  it('answers a request, and fails at once when no one listens', async () => {
    const sub = b.subscribe(`${ns}.echo`, (m) => b.publish(m.reply!, m.data, { headers: { echoed: 'yes' } }));
    await b.flush();
    const reply = await a.request(`${ns}.echo`, encodeJson({ hi: 1 }), { timeoutMs: 1000 });
    expect(JSON.parse(text(reply))).toEqual({ hi: 1 });
    expect(reply.headers.echoed).toBe('yes');
    sub.unsubscribe();
    await b.flush();
    const started = Date.now();
    await expect(a.request(`${ns}.nobody`, encodeJson({}), { timeoutMs: 5000 })).rejects.toBeInstanceOf(BusNoRespondersError);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('tells the reply subject at once when a publish with a reply finds no one listening', async () => {
    const { got, sub } = collect(a, `${ns}.replies.r1`);
    await a.flush();
    // The server answers the publishing connection: the reply subject is its own.
    a.publish(`${ns}.nobody-here`, encodeJson({}), { reply: `${ns}.replies.r1` });
    await until(() => got.length === 1);
    expect(got[0]!.noResponders).toBe(true);
    expect(got[0]!.data.length).toBe(0);
    // With a listener, the message itself arrives and carries the reply subject.
    const listener = collect(b, `${ns}.somebody`);
    await b.flush();
    a.publish(`${ns}.somebody`, encodeJson({ x: 1 }), { reply: `${ns}.replies.r1` });
    await until(() => listener.got.length === 1);
    expect(listener.got[0]!.reply).toBe(`${ns}.replies.r1`);
    expect(listener.got[0]!.noResponders).toBeUndefined();
    sub.unsubscribe();
    listener.sub.unsubscribe();
  });

  it('times out a request that is never answered', async () => {
    const sub = b.subscribe(`${ns}.silent`, () => {});
    await b.flush();
    await expect(a.request(`${ns}.silent`, encodeJson({}), { timeoutMs: 100 })).rejects.toBeInstanceOf(BusTimeoutError);
    sub.unsubscribe();
  });

  it('keeps delivering when a handler throws', async () => {
    const got: string[] = [];
    const sub = b.subscribe(`${ns}.throw`, (m) => {
      got.push(text(m));
      if (got.length === 1) throw new Error('boom');
    });
    await b.flush();
    a.publish(`${ns}.throw`, encodeJson(1));
    a.publish(`${ns}.throw`, encodeJson(2));
    await until(() => got.length === 2);
    expect(handlerErrors.some((e) => e.includes('boom'))).toBe(true);
    sub.unsubscribe();
  });

  it('reports connected', () => {
    expect(a.state()).toBe('connected');
  });
});
