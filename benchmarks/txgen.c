/* txgen: a drop-tolerant packet generator for benchmarks/forwarding.py (BRIEF.md §6).
 *
 * AF_PACKET TX ring (TPACKET_V2) with PACKET_QDISC_BYPASS, pre-filled once with one frame per
 * flow, so the hot loop only flips status words and kicks the kernel. Unlike trafgen it treats
 * EAGAIN/ENOBUFS as back-pressure instead of a fatal error (trafgen exits when a veth peer's
 * backlog on another CPU holds its socket's send buffer), and it raises its own send buffer with
 * SO_SNDBUFFORCE instead of changing system-wide sysctls.
 *
 * usage: txgen IFNAME FRAME_HEX FLOWS SPORT_OFFSET [PPS [COUNT]]
 *   FRAME_HEX     the frame to send (hex, no FCS); byte SPORT_OFFSET+1 is varied per flow
 *   FLOWS         number of flows (1..256): source port low byte = template + i
 *   PPS           rate limit (0 or absent: as fast as possible)
 *   COUNT         stop after this many frames have left (0 or absent: run until SIGTERM/SIGINT)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_SIZE 2048
#define FRAMES 4096
#define BATCH 256
#define DATA_OFF (TPACKET_ALIGN(sizeof(struct tpacket2_hdr)))

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static int hexval(char c) {
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static double now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc < 5) {
		fprintf(stderr, "usage: %s IFNAME FRAME_HEX FLOWS SPORT_OFFSET [PPS [COUNT]]\n", argv[0]);
		return 2;
	}
	const char *ifname = argv[1], *hex = argv[2];
	int flows = atoi(argv[3]), sport_off = atoi(argv[4]);
	double pps = argc > 5 ? atof(argv[5]) : 0;
	unsigned long long count = argc > 6 ? strtoull(argv[6], NULL, 10) : 0;
	size_t len = strlen(hex) / 2;
	unsigned char frame[FRAME_SIZE];
	if (len < 14 || len > FRAME_SIZE - DATA_OFF || flows < 1 || flows > 256) {
		fprintf(stderr, "bad frame length or flow count\n");
		return 2;
	}
	for (size_t i = 0; i < len; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
		if (hi < 0 || lo < 0) { fprintf(stderr, "bad hex\n"); return 2; }
		frame[i] = (unsigned char)(hi << 4 | lo);
	}
	int fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0) { perror("socket"); return 1; }
	int v = TPACKET_V2, one = 1, sndbuf = 64 << 20;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) ||
	    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) ||
	    setsockopt(fd, SOL_PACKET, PACKET_LOSS, &one, sizeof one)) {
		perror("setsockopt"); return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
	struct tpacket_req req = {FRAME_SIZE * 32, FRAMES / 32, FRAME_SIZE, FRAMES};
	if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof req)) { perror("PACKET_TX_RING"); return 1; }
	unsigned char *ring = mmap(NULL, (size_t)FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED) { perror("mmap"); return 1; }
	struct sockaddr_ll addr = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
				   .sll_ifindex = (int)if_nametoindex(ifname)};
	if (!addr.sll_ifindex || bind(fd, (struct sockaddr *)&addr, sizeof addr)) { perror("bind"); return 1; }
	for (int i = 0; i < FRAMES; i++) {
		unsigned char *data = ring + (size_t)i * FRAME_SIZE + DATA_OFF;
		memcpy(data, frame, len);
		data[sport_off + 1] = (unsigned char)(frame[sport_off + 1] + i % flows);
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	unsigned head = 0;
	double start = now();
	unsigned long long sent = 0;
	int batch = BATCH;
	if (pps > 0 && pps * 1e-4 < BATCH)
		batch = pps * 1e-4 < 1 ? 1 : (int)(pps * 1e-4); /* about 100 us of traffic per kick */
	while (!stop) {
		int queued = 0;
		if (count && sent + (unsigned long long)batch > count)
			batch = (int)(count - sent);
		if (count && sent >= count)
			break;
		for (; queued < batch; queued++) {
			struct tpacket2_hdr *h = (void *)(ring + (size_t)head * FRAME_SIZE);
			if (h->tp_status != TP_STATUS_AVAILABLE && h->tp_status != TP_STATUS_WRONG_FORMAT)
				break;
			h->tp_len = (unsigned)len;
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			head = (head + 1) % FRAMES;
		}
		if (queued == 0) {
			struct pollfd p = {fd, POLLOUT, 0};
			poll(&p, 1, 1);
		}
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN && errno != ENOBUFS &&
		    errno != EINTR) {
			perror("sendto");
			return 1;
		}
		sent += (unsigned long long)queued;
		if (pps > 0) {
			double due = start + sent / pps;
			while (!stop && now() < due)
				;
		}
	}
	/* COUNT mode: wait until the kernel has taken every queued frame */
	for (int spins = 0; count && spins < 1000; spins++) {
		int busy = 0;
		for (int i = 0; i < FRAMES && !busy; i++) {
			struct tpacket2_hdr *h = (void *)(ring + (size_t)i * FRAME_SIZE);
			busy = h->tp_status == TP_STATUS_SEND_REQUEST || h->tp_status == TP_STATUS_SENDING;
		}
		if (!busy)
			break;
		sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
		usleep(1000);
	}
	return 0;
}
