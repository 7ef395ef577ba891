// Command kubevpc-goclient measures CreateRoute/s against a dpdkironcore.v1 server with a Go gRPC
// client, whose per-call CPU is far below the Python client's, so the server is what is measured.
//
// Messages are built at run time from a FileDescriptorSet of dpdk.proto (dynamicpb), so the module
// needs no generated code. Each call adds a distinct IPv4 /32 (10.0.0.0 + first + i) to -vni.
// Prints one JSON line: {"calls", "seconds", "per_s", "errors"}; exits 1 if any call failed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

const method = "/dpdkironcore.v1.DPDKironcore/CreateRoute"

type result struct {
	Calls   int     `json:"calls"`
	Seconds float64 `json:"seconds"`
	PerS    float64 `json:"per_s"`
	Errors  int64   `json:"errors"`
}

// routes builds CreateRouteRequest messages from the descriptors of dpdk.proto.
type routes struct {
	request, response protoreflect.MessageDescriptor
	route, prefix, ip protoreflect.MessageDescriptor
	ipv4, ipv6        protoreflect.EnumNumber
	vni               uint32
	nexthop           protoreflect.Message
}

func field(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fd := md.Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		fail(fmt.Errorf("%s has no field %s", md.FullName(), name))
	}
	return fd
}

func loadRoutes(path string, vni uint32) *routes {
	raw, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		fail(fmt.Errorf("%s: %w", path, err))
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		fail(err)
	}
	message := func(name string) protoreflect.MessageDescriptor {
		d, err := files.FindDescriptorByName(protoreflect.FullName("dpdkironcore.v1." + name))
		if err != nil {
			fail(err)
		}
		return d.(protoreflect.MessageDescriptor)
	}
	enum := func(name string) protoreflect.EnumNumber {
		d, err := files.FindDescriptorByName(protoreflect.FullName("dpdkironcore.v1." + name))
		if err != nil {
			fail(err)
		}
		return d.(protoreflect.EnumValueDescriptor).Number()
	}
	r := &routes{
		request: message("CreateRouteRequest"), response: message("CreateRouteResponse"),
		route: message("Route"), prefix: message("Prefix"), ip: message("IpAddress"),
		ipv4: enum("IPV4"), ipv6: enum("IPV6"), vni: vni,
	}
	r.nexthop = r.address(r.ipv6, "fc00:2::64:0:1")
	return r
}

func (r *routes) address(ipver protoreflect.EnumNumber, text string) protoreflect.Message {
	m := dynamicpb.NewMessage(r.ip)
	m.Set(field(r.ip, "ipver"), protoreflect.ValueOfEnum(ipver))
	m.Set(field(r.ip, "address"), protoreflect.ValueOfBytes([]byte(text)))
	return m
}

// requestFor returns the CreateRouteRequest for the i-th /32: 10.0.0.0 + i.
func (r *routes) requestFor(i uint32) *dynamicpb.Message {
	text := fmt.Sprintf("%d.%d.%d.%d", 10+(i>>24), (i>>16)&255, (i>>8)&255, i&255)
	prefix := dynamicpb.NewMessage(r.prefix)
	prefix.Set(field(r.prefix, "ip"), protoreflect.ValueOfMessage(r.address(r.ipv4, text)))
	prefix.Set(field(r.prefix, "length"), protoreflect.ValueOfUint32(32))
	route := dynamicpb.NewMessage(r.route)
	route.Set(field(r.route, "prefix"), protoreflect.ValueOfMessage(prefix))
	route.Set(field(r.route, "nexthop_address"), protoreflect.ValueOfMessage(r.nexthop))
	req := dynamicpb.NewMessage(r.request)
	req.Set(field(r.request, "vni"), protoreflect.ValueOfUint32(r.vni))
	req.Set(field(r.request, "route"), protoreflect.ValueOfMessage(route))
	return req
}

// statusCode reads response.status.code, the in-band dpservice error code (0 = success).
func (r *routes) statusCode(resp *dynamicpb.Message) uint64 {
	status := resp.Get(field(r.response, "status")).Message()
	return status.Get(field(status.Descriptor(), "code")).Uint()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kubevpc-goclient:", err)
	os.Exit(2)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:1337", "server address host:port")
	descriptor := flag.String("descriptor", "", "FileDescriptorSet of dpdkironcore/v1/dpdk.proto (--include_imports)")
	vni := flag.Uint("vni", 100, "VNI the routes go into")
	calls := flag.Int("n", 10000, "CreateRoute calls")
	inflight := flag.Int("c", 1, "calls in flight (1 = serial)")
	first := flag.Uint("first", 0, "index of the first route (route i is 10.0.0.0 + i / 32)")
	flag.Parse()
	if *descriptor == "" || *calls < 1 || *inflight < 1 {
		flag.Usage()
		os.Exit(2)
	}
	r := loadRoutes(*descriptor, uint32(*vni))

	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fail(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(ctx, state) {
			fail(fmt.Errorf("%s not ready: %v", *addr, state))
		}
	}
	cancel()

	var next atomic.Int64
	var errors atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *inflight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp := dynamicpb.NewMessage(r.response)
			for {
				i := next.Add(1) - 1
				if i >= int64(*calls) {
					return
				}
				resp.Reset()
				err := conn.Invoke(context.Background(), method, r.requestFor(uint32(*first)+uint32(i)), resp)
				if err == nil {
					if code := r.statusCode(resp); code != 0 {
						err = fmt.Errorf("route %d: status code %d", uint64(*first)+uint64(i), code)
					}
				}
				if err != nil {
					errors.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		}()
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()

	out, _ := json.Marshal(result{Calls: *calls, Seconds: seconds, PerS: float64(*calls) / seconds, Errors: errors.Load()})
	fmt.Println(string(out))
	if errors.Load() > 0 {
		fmt.Fprintf(os.Stderr, "kubevpc-goclient: %d of %d calls failed, first: %v\n", errors.Load(), *calls, firstErr.Load())
		os.Exit(1)
	}
}
