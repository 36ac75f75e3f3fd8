/* SPDX-License-Identifier: MIT */
/*
 * Shared between the XDP program (bpf/aegis.bpf.c) and the user side (native/src/ C++ files):
 * map names, key/value layouts, counter slots. Change a layout here and both sides follow;
 * pinned maps of the old layout are then refused by libbpf (remove the pins to migrate).
 *
 * Byte order: addresses are kept exactly as they sit in the packet (network order), so the
 * program copies bytes and never swaps. LPM prefix lengths are host order (kernel ABI).
 *
 * Time: a ban's expiry is CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns), not epoch time.
 * The user side converts `expires` epoch seconds with the clock pair read at write time:
 *     expires_boot_ns = boot_now_ns + (expires_epoch_s - epoch_now_s) * 1e9
 * BOOTTIME keeps counting through suspend and restarts at 0 on reboot, which is exactly the
 * lifetime of a pinned map (bpffs is in memory), so a value never outlives its clock.
 * A wall-clock step after the ban was written does not move the kernel's expiry; the daemon's
 * periodic reconcile rewrites values that drifted by more than a few seconds.
 */
#ifndef AEGIS_COMMON_H
#define AEGIS_COMMON_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define AEGIS_PROG_NAME "aegis_xdp"

/* Map names: also the file names under the pin path. */
#define AEGIS_MAP_BAN_V4 "aegis_ban_v4"
#define AEGIS_MAP_BAN_V6 "aegis_ban_v6"
#define AEGIS_MAP_CIDR_V4 "aegis_cidr_v4"
#define AEGIS_MAP_CIDR_V6 "aegis_cidr_v6"
#define AEGIS_MAP_ALLOW_V4 "aegis_allow_v4"
#define AEGIS_MAP_ALLOW_V6 "aegis_allow_v6"
#define AEGIS_MAP_RATE "aegis_rate"
#define AEGIS_MAP_STATS "aegis_stats"

#define AEGIS_DEFAULT_MAX_ENTRIES (1u << 20)
#define AEGIS_ALLOW_MAX_ENTRIES 16384
#define AEGIS_RATE_DEFAULT_ENTRIES 65536

/* 0 = permanent; otherwise CLOCK_BOOTTIME ns after which the entry no longer drops. */
struct aegis_ban {
	__u64 expires_ns;
};

struct aegis_lpm_v4 {
	__u32 prefixlen;
	__u8 addr[4];
};

struct aegis_lpm_v6 {
	__u32 prefixlen;
	__u8 addr[16];
};

/* Rate limiter key: IPv4 sources are stored as IPv4-mapped IPv6 so one LRU serves both. */
struct aegis_rate_key {
	__u8 addr[16];
};

/* Token bucket; tokens are in 1e-9 packet units so refill is elapsed_ns * pps. */
struct aegis_rate_state {
	__u64 tokens;
	__u64 last_ns;
};

/*
 * Load-time knobs (`const volatile`, in .rodata): set by the loader before the verifier sees
 * the program, so a disabled rate limiter is dead code, not a runtime branch per packet.
 */
struct aegis_config {
	/* packets per second per source; 0 = rate limiter off */
	__u64 rate_pps;
	/* bucket size in token units (burst packets * 1e9) */
	__u64 rate_burst_tokens;
	/* idle time after which a bucket is full again: burst * 1e9 / pps (caps the multiply) */
	__u64 rate_fill_ns;
};

/* Slots of the per-CPU counter array; user space sums over CPUs. */
enum aegis_stat {
	AEGIS_STAT_PASS_V4 = 0,
	AEGIS_STAT_DROP_V4 = 1,
	AEGIS_STAT_PASS_V6 = 2,
	AEGIS_STAT_DROP_V6 = 3,
	AEGIS_STAT_DROP_BLOCKLIST = 4,
	AEGIS_STAT_DROP_CIDR = 5,
	AEGIS_STAT_DROP_RATE_LIMIT = 6,
	/* frames not parsed as IPv4/IPv6 (ARP, truncated, later fragments): always passed */
	AEGIS_STAT_PASS_OTHER = 7,
	/* sources an allow entry saved from a drop */
	AEGIS_STAT_ALLOW_HIT = 8,
	AEGIS_STAT_MAX = 9,
};

#endif /* AEGIS_COMMON_H */
