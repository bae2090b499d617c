// A frontend's whole view of the server: the AppRouter type, from the packed @concert/api.
import type { AppCode, AppRouter, Reservation, RouterInputs, RouterOutputs } from '@concert/api';
import { createTRPCClient, httpBatchLink, isTRPCClientError } from '@trpc/client';
import superjson from 'superjson';

let queueToken: string | undefined;

function createApi(url: string, userId: string) {
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url,
        transformer: superjson,
        headers: () => ({ 'x-user-id': userId, ...(queueToken ? { 'x-queue-token': queueToken } : {}) }),
      }),
    ],
  });
}

export let api = createApi('http://127.0.0.1:3000/trpc', '1');

/** Points the client at another server or user (a real frontend takes both from its config and its login). */
export function connect(url: string, userId: string): void {
  api = createApi(url, userId);
  queueToken = undefined;
}

/** Waits its turn, holds two seats and pays for them; returns the paid reservation. */
export async function buyTwoSeats(concertId: number, scheduleId: number): Promise<Reservation> {
  const ticket = await api.queue.enter.mutate({ concertId });
  queueToken = ticket.token;
  // Ask again when the ticket says (pollAfterMs): polling sooner than half of it is RATE_LIMITED,
  // and a line with an opening time starts its entrants in PRE_QUEUE.
  let status = ticket;
  while (status.status === 'PRE_QUEUE' || status.status === 'WAITING') {
    await new Promise((r) => setTimeout(r, status.pollAfterMs));
    status = await api.queue.status.query({});
  }
  if (status.status !== 'ACTIVE') throw new Error(`the line ended without a turn: ${status.status}`);
  const map: RouterOutputs['concerts']['seats'] = await api.concerts.seats.query({ scheduleId });
  const free = map.seats.filter((s) => s.status === 'AVAILABLE').slice(0, 2);
  const hold: RouterInputs['reservations']['hold'] = {
    scheduleId,
    seatNumbers: free.map((s) => s.seatNumber),
    idempotencyKey: crypto.randomUUID(),
  };
  const held = await api.reservations.hold.mutate(hold);
  const expires: Date = held.holdExpiresAt; // superjson brings Dates back as Dates
  console.log(`held until ${expires.toISOString()}`);
  await api.payments.pay.mutate({ reservationId: held.reservationId, idempotencyKey: crypto.randomUUID() });
  return api.reservations.get.query({ reservationId: held.reservationId });
}

/** Every reservation of the user, newest first: lists come a page (at most 100) at a time. */
export async function allMyReservations(): Promise<Reservation[]> {
  const all: Reservation[] = [];
  let cursor: string | undefined;
  do {
    const page: RouterOutputs['reservations']['mine'] = await api.reservations.mine.query({ limit: 100, ...(cursor ? { cursor } : {}) });
    all.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return all;
}

/** Joins the line; what it returns (a QueueTicket) is named by the package, so this compiles with declarations on. */
export function enterLine(concertId: number) {
  return api.queue.enter.mutate({ concertId });
}

/** The user's waitlist entries, a page at a time (a Page of WaitlistEntry). */
export function myWaitlist(cursor?: string) {
  return api.waitlist.mine.query(cursor ? { cursor } : {});
}

/** The contract's error code of a failed call, typed. */
export function appCodeOf(err: unknown): AppCode | undefined {
  return isTRPCClientError<AppRouter>(err) ? err.data?.appCode : undefined;
}
