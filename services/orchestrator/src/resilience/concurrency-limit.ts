/**
 * At most `max` calls at once; a call that finds every slot taken is refused at once rather than queued, so
 * the caller can go elsewhere (the next model target) instead of waiting behind others. 0 means no limit.
 */
export class ConcurrencyLimit {
  private used = 0;

  constructor(private readonly max: number) {}

  get inUse(): number {
    return this.used;
  }

  /** A release function when a slot was free (call it exactly once), else undefined. */
  tryAcquire(): (() => void) | undefined {
    if (this.max > 0 && this.used >= this.max) return undefined;
    this.used += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= 1;
    };
  }
}
