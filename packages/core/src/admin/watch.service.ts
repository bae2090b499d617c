import type { Clock } from '../clock.ts';
import type { ConcertsService } from '../concerts/concerts.service.ts';
import type { QueueService, QueueWatchView } from '../queue/queue.service.ts';

/** Holds lapsing within this long are called out in the operator's view. */
export const LAPSING_WITHIN_SECONDS = 60;

export interface SaleWatch {
  at: Date;
  concertId: number;
  title: string;
  line: QueueWatchView;
  shows: Array<{
    scheduleId: number;
    startsAt: Date;
    /** Holds are refused before it (BOOKING_NOT_OPEN): the operator's view says when it comes. */
    bookingOpensAt: Date;
    available: number;
    held: number;
    sold: number;
    /** Held seats whose hold lapses within LAPSING_WITHIN_SECONDS. */
    lapsingSoon: number;
    nextLapse: Date | null;
  }>;
  lapsingWithinSeconds: number;
}

/** One snapshot of a sale for `concert admin watch`: the line and the seats of every show to come. */
export class WatchService {
  constructor(private readonly deps: { clock: Clock; queue: QueueService; concerts: ConcertsService }) {}

  async sale(concertId: number): Promise<SaleWatch> {
    const now = this.deps.clock.now();
    const [concert, line, shows] = await Promise.all([
      this.deps.concerts.get(concertId),
      this.deps.queue.watch(concertId),
      this.deps.concerts.seatCounts(concertId, now, LAPSING_WITHIN_SECONDS * 1000),
    ]);
    return { at: now, concertId, title: concert.title, line, shows, lapsingWithinSeconds: LAPSING_WITHIN_SECONDS };
  }
}
