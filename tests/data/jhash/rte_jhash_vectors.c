/*
 * Prints the rte_jhash test vectors used by tests/unit/agent/test_jhash.py, computed by DPDK's own
 * header (Debian bookworm libdpdk-dev 22.11: `apt-get download libdpdk-dev`, extract, then
 *   gcc -I<x>/usr/include/dpdk -I<x>/usr/include/x86_64-linux-gnu/dpdk rte_jhash_vectors.c).
 */
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <rte_jhash.h>

/* dpservice's struct flow_key (include/dp_flow.h), packed, 44 bytes */
struct __attribute__((packed)) ipaddr { union { uint8_t v6[16]; uint32_t v4; }; uint8_t is_v6; };
struct __attribute__((packed)) flow_key {
	struct ipaddr dst; uint8_t proto; uint16_t port_dst;
	struct ipaddr src; uint8_t vnf_type; uint16_t port_src; uint32_t vni;
};

static void flow_hash(const struct flow_key *k)
{
	uint32_t w[11];
	memcpy(w, k, sizeof(w));
	printf("flow %08x\n", rte_jhash_32b(w, 11, 0xfee1900d));  /* dp_jhash_nwords */
}

int main(void)
{
	uint32_t w[16];
	const char *text = "Four score and seven years ago";
	struct flow_key k;

	for (int i = 0; i < 16; i++)
		w[i] = 0x01000193u * (uint32_t)(i + 1) ^ 0x9e3779b9u;
	for (uint32_t n = 0; n <= 13; n++)
		printf("32b %u %08x %08x\n", n, rte_jhash_32b(w, n, 0), rte_jhash_32b(w, n, 0xfee1900du));
	printf("1word %08x\n", rte_jhash_1word(w[0], 0xfee1900du));
	printf("2words %08x\n", rte_jhash_2words(w[0], w[1], 0xfee1900du));
	printf("3words %08x\n", rte_jhash_3words(w[0], w[1], w[2], 0xfee1900du));
	for (uint32_t n = 0; n <= 30; n++)
		printf("bytes %u %08x %08x\n", n, rte_jhash(text, n, 0), rte_jhash(text, n, 1));

	memset(&k, 0, sizeof(k));  /* TCP 10.0.0.1:12345 -> 10.0.0.2:80, VNI 100 */
	k.dst.v4 = 0x0a000002; k.proto = 6; k.port_dst = 80; k.src.v4 = 0x0a000001; k.port_src = 12345; k.vni = 100;
	flow_hash(&k);
	memset(&k, 0, sizeof(k));  /* UDP 172.16.0.1:40000 -> 192.168.1.5:53, vnf_type NAT, VNI 0xffffff */
	k.dst.v4 = 0xc0a80105; k.proto = 17; k.port_dst = 53; k.src.v4 = 0xac100001; k.vnf_type = 5;
	k.port_src = 40000; k.vni = 0xffffff;
	flow_hash(&k);
	memset(&k, 0, sizeof(k));  /* ICMPv6 type 128 id 0x1234 2001:db8::1 -> 2001:db8::2, VNI 7 */
	static const uint8_t d6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 2};
	static const uint8_t s6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	memcpy(k.dst.v6, d6, 16); k.dst.is_v6 = 1; memcpy(k.src.v6, s6, 16); k.src.is_v6 = 1;
	k.proto = 58; k.port_dst = 0x1234; k.port_src = 128; k.vni = 7;
	flow_hash(&k);
	return 0;
}
