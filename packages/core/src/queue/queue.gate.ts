/** A schedule's seat-map version as the gate's check read it (see seatmap.cache.ts); null: no epoch yet. */
export type GateSeatMapVersion = { epoch: string; n: number; freed: number } | null;

declare const admitted: unique symbol;

/**
 * Proof that the caller's queue token was ACTIVE for `concertId` when the gate checked it. The
 * brand's symbol is not exported, so only the gate (QueueService.gate) makes one, and every
 * booking write (claiming seats, selling them, reading the seat map behind the gate) asks for it:
 * a booking step that forgets the gate has no pass to give and does not compile.
 */
export interface ActivePass {
  readonly [admitted]: true;
  readonly userId: number;
  readonly concertId: number;
  /** The token that was checked: a payment made with this pass gives up this token, and no other. */
  readonly tokenId: string;
  /** Present when the check was asked for a schedule's seat-map version (`seatMapOf`). */
  readonly seatMapVersion?: GateSeatMapVersion;
}

/**
 * What a booking step asks of the waiting room. Built per request from the caller's identity and
 * x-queue-token header (the API's activeQueueProcedure puts it in ctx); the service calls `admit`
 * once it knows the concert concerned (and after an idempotent replay has had its chance).
 */
export interface QueueGate {
  /**
   * Throws TOKEN_INVALID (missing, malformed, forged or someone else's token), TOKEN_WRONG_CONCERT,
   * QUEUE_NOT_ACTIVE (still waiting) or TOKEN_EXPIRED. With `seatMapOf`, the same round trip also
   * reads that schedule's seat-map version, when the store can.
   */
  admit(concertId: number, opts?: { seatMapOf?: number }): Promise<ActivePass>;
}

/** The token that paid, as a payment stores it, so that a replay gives up that token and never a newer one. */
export type PaidToken = Pick<ActivePass, 'concertId' | 'tokenId'>;

/** What a payment asks of the waiting room after its commit. */
export interface SpentTokens {
  /** Gives up this token (a no-op when it is already gone), admitting whoever is next. */
  spend(token: PaidToken): Promise<void>;
}
