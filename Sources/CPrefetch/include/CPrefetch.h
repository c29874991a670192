// Cache prefetch hints for the click models' scattered row updates (FunnelModels): a random
// embedding row is asked for some rows ahead of its use, so that its cache misses overlap with the
// work on the rows before it. The AVX2 matrix kernel asks the same way for each tile's output lines.
#ifndef FUNNEL_CPREFETCH_H
#define FUNNEL_CPREFETCH_H

/// Asks for the cache line holding `address`, to be read soon.
static inline void funnel_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

/// Asks for the cache line holding `address`, to be written soon.
static inline void funnel_prefetch_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#endif
