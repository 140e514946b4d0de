/* Thin wrappers around the x86 instructions and MMIO the self-test uses. */
#ifndef SELFTEST_HW_H
#define SELFTEST_HW_H

#include <stdint.h>
#include <stddef.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int32_t i32;
typedef int64_t i64;

#define ALIGNED(n) __attribute__((aligned(n)))
#define NORETURN __attribute__((noreturn))
#define PAGE_SIZE 4096

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) {
  u8 v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

static inline u64 rdtsc(void) {
  u32 lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((u64)hi << 32) | lo;
}

static inline void cpuid(u32 leaf, u32 *a, u32 *b, u32 *c, u32 *d) {
  __asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(0));
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void hlt(void) { __asm__ volatile("hlt" ::: "memory"); }

/* Full fence. mfence needs SSE2; the locked add is the pre-SSE2 equivalent (both order
 * a store before a later load, which is what the store-buffering litmus test needs). */
extern int have_sse2;
static inline void full_fence(void) {
  if (have_sse2)
    __asm__ volatile("mfence" ::: "memory");
  else
    __asm__ volatile("lock addl $0, (%%esp)" ::: "memory", "cc");
}

static inline u32 mmio_read32(uintptr_t addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(uintptr_t addr, u32 v) { *(volatile u32 *)addr = v; }

static inline u32 atomic_xadd(volatile u32 *p, u32 v) {
  __asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p)::"memory", "cc");
  return v;
}
static inline u32 atomic_cmpxchg(volatile u32 *p, u32 old, u32 new_) {
  u32 prev;
  __asm__ volatile("lock cmpxchgl %2, %1" : "=a"(prev), "+m"(*p) : "r"(new_), "0"(old) : "memory", "cc");
  return prev;
}
static inline u32 atomic_xchg(volatile u32 *p, u32 v) {
  __asm__ volatile("xchgl %0, %1" : "+r"(v), "+m"(*p)::"memory");
  return v;
}
static inline u32 load32(const volatile u32 *p) { return *p; }
static inline void store32(volatile u32 *p, u32 v) { *p = v; }

/* 64-by-32 division without libgcc (a 32-bit libgcc is not installed with plain gcc). */
static inline u64 div64(u64 n, u32 d) {
  u32 hi = (u32)(n >> 32), lo = (u32)n;
  u32 qhi = hi / d, r = hi % d, qlo;
  __asm__("divl %4" : "=a"(qlo), "=d"(r) : "a"(lo), "d"(r), "rm"(d));
  return ((u64)qhi << 32) | qlo;
}

#endif
