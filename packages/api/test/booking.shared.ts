/**
 * Booking steps (concerts.seats, reservations.hold, payments.pay) need an ACTIVE waiting-room
 * token for the concert concerned. These helpers enter the queue on the caller's behalf before
 * each step, so the issue-2 suites test the booking core and not the line in front of it.
 * `queue.enter` hands back the live token while there is one, and a fresh one after a payment
 * expired it; BOOKING_ENV makes admission immediate and long-lived.
 */
import { client } from '../../../test/harness.ts';

/** Admission wide and long enough that every test user is ACTIVE at once, even as fake clocks move. */
export const BOOKING_ENV = { QUEUE_MAX_ACTIVE: '1000000', QUEUE_ACTIVE_TTL_SECONDS: '86400' };

export type Client = ReturnType<typeof client>;

export interface Booking {
  /** A client for `userId` carrying a live ACTIVE queue token for the concert. */
  forConcert(userId: number, concertId: number): Promise<Client>;
  /** The same for the concert of a schedule; no token when the schedule does not exist. */
  forSchedule(userId: number, scheduleId: number): Promise<Client>;
  /** The same for the concert of the user's reservation; no token when the user cannot see it. */
  forReservation(userId: number, reservationId: string): Promise<Client>;
}

export function booking(url: () => string): Booking {
  const concertOfSchedule = new Map<number, number>();
  const forConcert = async (userId: number, concertId: number) => {
    const ticket = await client(url(), { userId }).queue.enter.mutate({ concertId });
    if (ticket.status !== 'ACTIVE') throw new Error(`user ${userId} is ${ticket.status} in the queue of concert ${concertId}, not ACTIVE`);
    return client(url(), { userId, queueToken: ticket.token });
  };
  return {
    forConcert,
    async forSchedule(userId, scheduleId) {
      let concertId = concertOfSchedule.get(scheduleId);
      if (concertId === undefined) {
        concertId = await client(url())
          .concerts.schedule.query({ scheduleId })
          .then((s) => s.concertId, () => undefined);
        if (concertId === undefined) return client(url(), { userId });
        concertOfSchedule.set(scheduleId, concertId);
      }
      return forConcert(userId, concertId);
    },
    async forReservation(userId, reservationId) {
      const concertId = await client(url(), { userId })
        .reservations.get.query({ reservationId })
        .then((r) => r.concertId, () => undefined);
      return concertId === undefined ? client(url(), { userId }) : forConcert(userId, concertId);
    },
  };
}
