/** What the last runtime inventory report of each account achieved: the health reports and logs tell it. */

/** One batch of the last report, as the integration health report lists it. */
export interface InventoryBatchOutcome {
  /** 1-based, as the spec and k8s-inventory count. */
  index: number;
  sentAt: Date;
  /** Why the batch did not arrive in its account (absent: it did). */
  error?: string;
}

/** Per-account outcome of the last report, for health reports and status. */
export interface InventoryStatus {
  account: string;
  lastAttempt?: Date;
  lastSuccess?: Date;
  /** How many batches the last report was split into (0: never attempted). */
  batchCount: number;
  /** Every batch of the last report that was sent, in order. */
  batches: InventoryBatchOutcome[];
  /** 1-based index of the last batch Anchore accepted; -1 if none. */
  lastSuccessfulIndex: number;
  /** Set while `account` does not exist in Anchore and its inventory goes to this (default) account instead. */
  sentToAccount?: string;
}
