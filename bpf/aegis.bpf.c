// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Aegis XDP blocklist. Per frame: parse Ethernet (+ one 802.1Q/802.1ad tag) and the IPv4/IPv6
 * source, then
 *   exact ban hash  -> drop (blocklist)   unless the source is in the allow trie
 *   ban prefix trie -> drop (cidr)        unless allowed
 *   token bucket    -> drop (rate_limit)  unless allowed (only when the loader enabled it)
 * and pass everything else, including whatever it does not understand (ARP, truncated frames,
 * IP fragments after the first). The allow trie is consulted only on the drop path, so a
 * passing packet costs one hash lookup and one trie lookup.
 * Expired entries pass: the daemon may be dead, the ban still ends on time (see aegis_common.h
 * for the clock).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "aegis_common.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile struct aegis_config aegis_cfg = {};

struct vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_DEFAULT_MAX_ENTRIES);
	__type(key, __u32);
	__type(value, struct aegis_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_ban_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_DEFAULT_MAX_ENTRIES);
	__type(key, struct in6_addr);
	__type(value, struct aegis_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_ban_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_DEFAULT_MAX_ENTRIES);
	__type(key, struct aegis_lpm_v4);
	__type(value, struct aegis_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_cidr_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_DEFAULT_MAX_ENTRIES);
	__type(key, struct aegis_lpm_v6);
	__type(value, struct aegis_ban);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_cidr_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_ALLOW_MAX_ENTRIES);
	__type(key, struct aegis_lpm_v4);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_allow_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, AEGIS_ALLOW_MAX_ENTRIES);
	__type(key, struct aegis_lpm_v6);
	__type(value, __u8);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_allow_v6 SEC(".maps");

/*
 * Buckets are shared by all CPUs without atomics: two CPUs refilling the same source at once
 * may let a packet or two more through. That is the price of no locks on the fast path.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, AEGIS_RATE_DEFAULT_ENTRIES);
	__type(key, struct aegis_rate_key);
	__type(value, struct aegis_rate_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AEGIS_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} aegis_stats SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&aegis_stats, &slot);

	if (v)
		*v += 1; /* per-CPU slot: no atomic needed */
}

static __always_inline int live(const struct aegis_ban *b, __u64 now)
{
	return b->expires_ns == 0 || b->expires_ns > now;
}

/* true when the source may be dropped: not in the allow trie */
static __always_inline int droppable_v4(const __u8 *saddr)
{
	struct aegis_lpm_v4 k = { .prefixlen = 32 };

	__builtin_memcpy(k.addr, saddr, 4);
	if (bpf_map_lookup_elem(&aegis_allow_v4, &k)) {
		count(AEGIS_STAT_ALLOW_HIT);
		return 0;
	}
	return 1;
}

static __always_inline int droppable_v6(const __u8 *saddr)
{
	struct aegis_lpm_v6 k = { .prefixlen = 128 };

	__builtin_memcpy(k.addr, saddr, 16);
	if (bpf_map_lookup_elem(&aegis_allow_v6, &k)) {
		count(AEGIS_STAT_ALLOW_HIT);
		return 0;
	}
	return 1;
}

/* 1 when the source is over its rate */
static __always_inline int over_rate(const struct aegis_rate_key *key, __u64 now)
{
	struct aegis_rate_state *st;
	__u64 elapsed, tokens;

	st = bpf_map_lookup_elem(&aegis_rate, key);
	if (!st) {
		struct aegis_rate_state fresh = {
			.tokens = aegis_cfg.rate_burst_tokens - 1000000000ULL,
			.last_ns = now,
		};
		bpf_map_update_elem(&aegis_rate, key, &fresh, BPF_ANY);
		return 0;
	}
	elapsed = now - st->last_ns;
	if (elapsed >= aegis_cfg.rate_fill_ns)
		tokens = aegis_cfg.rate_burst_tokens;
	else
		tokens = st->tokens + elapsed * aegis_cfg.rate_pps;
	if (tokens > aegis_cfg.rate_burst_tokens)
		tokens = aegis_cfg.rate_burst_tokens;
	st->last_ns = now;
	if (tokens < 1000000000ULL) {
		st->tokens = tokens;
		return 1;
	}
	st->tokens = tokens - 1000000000ULL;
	return 0;
}

static __always_inline int verdict_v4(struct iphdr *ip)
{
	__u8 *saddr = (__u8 *)&ip->saddr;
	__u64 now = bpf_ktime_get_boot_ns();
	struct aegis_ban *b;
	__u32 key;

	__builtin_memcpy(&key, saddr, 4);
	b = bpf_map_lookup_elem(&aegis_ban_v4, &key);
	if (b && live(b, now) && droppable_v4(saddr)) {
		count(AEGIS_STAT_DROP_BLOCKLIST);
		goto drop;
	}

	struct aegis_lpm_v4 lk = { .prefixlen = 32 };
	__builtin_memcpy(lk.addr, saddr, 4);
	b = bpf_map_lookup_elem(&aegis_cidr_v4, &lk);
	if (b && live(b, now) && droppable_v4(saddr)) {
		count(AEGIS_STAT_DROP_CIDR);
		goto drop;
	}

	if (aegis_cfg.rate_pps) {
		struct aegis_rate_key rk = {};

		rk.addr[10] = 0xff;
		rk.addr[11] = 0xff;
		__builtin_memcpy(&rk.addr[12], saddr, 4);
		if (over_rate(&rk, now) && droppable_v4(saddr)) {
			count(AEGIS_STAT_DROP_RATE_LIMIT);
			goto drop;
		}
	}
	count(AEGIS_STAT_PASS_V4);
	return XDP_PASS;
drop:
	count(AEGIS_STAT_DROP_V4);
	return XDP_DROP;
}

static __always_inline int verdict_v6(struct ipv6hdr *ip6)
{
	__u8 *saddr = (__u8 *)&ip6->saddr;
	__u64 now = bpf_ktime_get_boot_ns();
	struct aegis_ban *b;

	b = bpf_map_lookup_elem(&aegis_ban_v6, saddr);
	if (b && live(b, now) && droppable_v6(saddr)) {
		count(AEGIS_STAT_DROP_BLOCKLIST);
		goto drop;
	}

	struct aegis_lpm_v6 lk = { .prefixlen = 128 };
	__builtin_memcpy(lk.addr, saddr, 16);
	b = bpf_map_lookup_elem(&aegis_cidr_v6, &lk);
	if (b && live(b, now) && droppable_v6(saddr)) {
		count(AEGIS_STAT_DROP_CIDR);
		goto drop;
	}

	if (aegis_cfg.rate_pps) {
		struct aegis_rate_key rk;

		__builtin_memcpy(rk.addr, saddr, 16);
		if (over_rate(&rk, now) && droppable_v6(saddr)) {
			count(AEGIS_STAT_DROP_RATE_LIMIT);
			goto drop;
		}
	}
	count(AEGIS_STAT_PASS_V6);
	return XDP_PASS;
drop:
	count(AEGIS_STAT_DROP_V6);
	return XDP_DROP;
}

SEC("xdp")
int aegis_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *cursor;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		goto other;
	proto = eth->h_proto;
	cursor = eth + 1;

	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_hdr *vh = cursor;

		if ((void *)(vh + 1) > data_end)
			goto other;
		proto = vh->encapsulated_proto;
		cursor = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = cursor;

		if ((void *)(ip + 1) > data_end || ip->ihl < 5)
			goto other;
		/* a later fragment carries no L4 header; judge the flow by its first fragment */
		if (ip->frag_off & bpf_htons(0x1fff))
			goto other;
		return verdict_v4(ip);
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = cursor;

		if ((void *)(ip6 + 1) > data_end)
			goto other;
		if (ip6->nexthdr == IPPROTO_FRAGMENT) {
			/* fragment header: next(1) reserved(1) offset+flags(2) id(4) */
			__be16 *off = (void *)(ip6 + 1) + 2;

			if ((void *)(off + 1) > data_end)
				goto other;
			if (*off & bpf_htons(0xfff8))
				goto other;
		}
		return verdict_v6(ip6);
	}
other:
	count(AEGIS_STAT_PASS_OTHER);
	return XDP_PASS;
}
