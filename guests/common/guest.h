/* C helpers shared by the small test guests (guests/enginetest, guests/interrupts): port I/O, the
 * hypercall port pair, COM1 output and string comparison. Include it after the guest's layout.h,
 * which says where the guest's hypercall ports are. All static inline, so a guest that does not
 * use one gets no code and no unused-function warning. */
#ifndef GUESTS_COMMON_GUEST_H
#define GUESTS_COMMON_GUEST_H
#include <stdint.h>

#if !defined(HC_CMD_PORT) || !defined(HC_ARG_PORT)
#error "include the guest's layout.h (HC_CMD_PORT, HC_ARG_PORT) before common/guest.h"
#endif

static inline void outb(uint16_t p, uint8_t v) { __asm__ volatile("outb %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outw(uint16_t p, uint16_t v) { __asm__ volatile("outw %0,%1" ::"a"(v), "Nd"(p)); }
static inline void outl(uint16_t p, uint32_t v) { __asm__ volatile("outl %0,%1" ::"a"(v), "Nd"(p)); }
static inline uint8_t inb(uint16_t p) { uint8_t v; __asm__ volatile("inb %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint16_t inw(uint16_t p) { uint16_t v; __asm__ volatile("inw %1,%0" : "=a"(v) : "Nd"(p)); return v; }
static inline uint32_t inl(uint16_t p) { uint32_t v; __asm__ volatile("inl %1,%0" : "=a"(v) : "Nd"(p)); return v; }

/* One hypercall: the argument, then the command; the host's answer is read back from the command port. */
static inline uint32_t hc(uint32_t cmd, uint32_t arg) { outl(HC_ARG_PORT, arg); outl(HC_CMD_PORT, cmd); return inl(HC_CMD_PORT); }

/* COM1, written without setting up the UART: v86 prints every byte it is given. */
static inline void putc_(char c) { outb(0x3F8, (uint8_t)c); }
static inline void puts_(const char *s) { while (*s) putc_(*s++); }
/* Eight hex digits, no prefix. */
static inline void puthex(uint32_t v) { for (int i = 28; i >= 0; i -= 4) putc_("0123456789abcdef"[(v >> i) & 15]); }

static inline int streq(const char *a, const char *b) { while (*a && *a == *b) a++, b++; return *a == *b; }

#endif
