import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { expect } from 'vitest';
import { ADMIN_KEY, client, key } from '../../../test/harness.ts';

export const adminAt = (url: string) => client(url, { adminKey: ADMIN_KEY }, { batch: false });

/** A client for the user holding an ACTIVE queue token for the concert (admission is wide open). */
export async function admitted(url: string, userId: number, concertId: number) {
  const fan = client(url, { userId }, { batch: false });
  let ticket = await fan.queue.enter.mutate({ concertId });
  // The line knows the inventory: right after seats come back (a refund, a lapse) it reopens
  // within a second, so a fan who entered meanwhile is told SOLD_OUT or waits that long.
  // Entering again returns the ticket as it stands, or a new one once the line has reopened.
  const deadline = Date.now() + 5_000;
  while ((ticket.status === 'WAITING' || ticket.status === 'SOLD_OUT') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    ticket = await fan.queue.enter.mutate({ concertId });
  }
  if (ticket.status !== 'ACTIVE') throw new Error(`user ${userId} is ${ticket.status}, not ACTIVE`);
  return client(url, { userId, queueToken: ticket.token }, { batch: false });
}

export async function holdSeats(url: string, userId: number, concertId: number, scheduleId: number, seatNumbers: number[]) {
  return (await admitted(url, userId, concertId)).reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key() });
}

export async function buySeats(url: string, userId: number, concertId: number, scheduleId: number, seatNumbers: number[]) {
  const api = await admitted(url, userId, concertId);
  const r = await api.reservations.hold.mutate({ scheduleId, seatNumbers, idempotencyKey: key() });
  await api.payments.pay.mutate({ reservationId: r.reservationId, idempotencyKey: key() });
  return r;
}

/** A show starting in a week, open for booking, and funded users. */
export async function makeShow(url: string, seatCount: number, users: number, balance = 1_000_000) {
  const a = adminAt(url);
  const now = Date.now();
  const c = await a.admin.concerts.create.mutate({
    title: `After-sale ${key()}`,
    venue: 'Test Hall',
    schedules: [{ startsAt: new Date(now + 7 * 86_400_000), bookingOpensAt: new Date(now - 3_600_000), seatCount }],
  });
  const userIds: number[] = [];
  for (let i = 0; i < users; i++) userIds.push((await a.admin.users.create.mutate({ name: `fan ${i}`, initialBalance: balance })).userId);
  return { concertId: c.concertId, scheduleId: c.schedules[0]!.scheduleId, userIds };
}

export async function expectAuditOk(url: string): Promise<void> {
  const audit = await adminAt(url).admin.audit.query({});
  expect(audit.checks.filter((c) => !c.ok)).toEqual([]);
  expect(audit.ok).toBe(true);
}

export interface ReceivedEvent {
  id: string;
  type: string;
  createdAt: string;
  data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  at: number;
  answered: number;
}

/**
 * A webhook receiver as a partner would run it: it verifies every request with the Standard
 * Webhooks library and the endpoint's secret (400 when that fails), then answers what `answer`
 * says. Every request is recorded, verified or not (`error`: why the library refused it).
 */
export class Receiver {
  readonly requests: Array<ReceivedEvent & { verified: boolean; error: string | null; headers: IncomingHttpHeaders }> = [];
  secret = '';
  /**
   * The status to answer; 'hang' leaves the request unanswered (the sender's timeout decides);
   * 'hold' keeps it open until answerHeld().
   */
  answer: (event: ReceivedEvent, attempt: number) => number | 'hang' | 'hold' = () => 204;
  private readonly held: Array<{ res: ServerResponse; request: Receiver['requests'][number] }> = [];
  private server: Server | undefined;
  url = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let event: ReceivedEvent | undefined;
        let error: string | null = null;
        try {
          event = new Webhook(this.secret).verify(body, req.headers as Record<string, string>) as ReceivedEvent;
        } catch (err) {
          error = err instanceof Error ? err.message : String(err);
          event = JSON.parse(body) as ReceivedEvent;
        }
        const verified = error === null;
        const attempt = this.requests.filter((r) => r.id === event.id).length + 1;
        const status = verified ? this.answer(event, attempt) : 400;
        const request = { ...event, at: Date.now(), answered: typeof status === 'number' ? status : 0, verified, error, headers: req.headers };
        this.requests.push(request);
        if (status === 'hold') this.held.push({ res, request });
        else if (status !== 'hang') res.writeHead(status).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks`;
    return this;
  }

  /** Answers every request held open so far ('hold') with `status`. */
  answerHeld(status: number): void {
    for (const { res, request } of this.held.splice(0)) {
      request.answered = status;
      if (!res.headersSent) res.writeHead(status).end();
    }
  }

  /** The delivered (2xx-answered) events, in arrival order. */
  delivered(filter: (e: ReceivedEvent) => boolean = () => true) {
    return this.requests.filter((r) => r.answered >= 200 && r.answered < 300 && filter(r));
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
