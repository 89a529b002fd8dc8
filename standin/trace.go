package main

// W3C trace context, as an instrumented service handles it: a request that arrives with a sampled
// traceparent gets a server span of its own (same trace ID, parent = the caller's span ID), which
// is exported to an OTLP/HTTP endpoint in the JSON encoding. The export is asynchronous and best
// effort: it never delays or fails the request. A request without a valid traceparent starts no
// trace, as Envoy does not trace a malformed one either.
//
//   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT  full URL, e.g. http://opentelemetry-collector.observability
//                                       .svc.cluster.local:4318/v1/traces (unset: export nothing)
//   OTEL_EXPORTER_OTLP_ENDPOINT         base URL; /v1/traces is appended (when the above is unset)
//   OTEL_SERVICE_NAME                   the resource's service.name (default: the role)
//   STANDIN_DROP_TRACE_CONTEXT=true     behave like a service that loses the context: the span
//                                       starts a new trace (a root), which a TEL check must catch

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	traceparentHeader = "Traceparent"
	exportQueue       = 256
	exportBatch       = 64
	exportTimeout     = 5 * time.Second
	spanKindServer    = 2
	statusCodeError   = 2
)

// spanContext is one parsed traceparent.
type spanContext struct {
	traceID string // 32 lowercase hex
	spanID  string // 16 lowercase hex
	sampled bool
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// parseTraceparent reads a W3C traceparent (version-traceid-parentid-flags). Version 00 has exactly
// four fields; a later version may append more, which are ignored as the spec says. ff is invalid,
// as are all-zero IDs and upper-case hex.
func parseTraceparent(v string) (spanContext, bool) {
	v = strings.TrimSpace(v)
	parts := strings.Split(v, "-")
	if len(parts) < 4 {
		return spanContext{}, false
	}
	version, traceID, spanID, flags := parts[0], parts[1], parts[2], parts[3]
	if len(version) != 2 || !isHex(version) || version == "ff" || (version == "00" && len(parts) != 4) {
		return spanContext{}, false
	}
	if len(traceID) != 32 || !isHex(traceID) || traceID == strings.Repeat("0", 32) {
		return spanContext{}, false
	}
	if len(spanID) != 16 || !isHex(spanID) || spanID == strings.Repeat("0", 16) {
		return spanContext{}, false
	}
	if len(flags) != 2 || !isHex(flags) {
		return spanContext{}, false
	}
	f, _ := strconv.ParseUint(flags, 16, 8)
	return spanContext{traceID: traceID, spanID: spanID, sampled: f&1 == 1}, true
}

func randomHex(bytesLen int) string {
	b := make([]byte, bytesLen)
	for {
		_, _ = rand.Read(b)
		for _, x := range b {
			if x != 0 {
				return hex.EncodeToString(b)
			}
		}
	}
}

// traceView is what an answer tells about the trace context: what arrived and the span this
// service made of it, so a check can look that span up in the collector.
type traceView struct {
	TraceID      string `json:"trace_id"`
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id,omitempty"`
	Sampled      bool   `json:"sampled"`
	Exported     bool   `json:"exported"` // handed to the exporter (false: not sampled, or no endpoint)
	Dropped      bool   `json:"context_dropped,omitempty"`
}

type traceKey struct{}

func traceFrom(r *http.Request) *traceView {
	v, _ := r.Context().Value(traceKey{}).(*traceView)
	return v
}

// otlpSpan is one finished server span, ready to encode.
type otlpSpan struct {
	traceID, spanID, parentSpanID string
	name                          string
	start, end                    time.Time
	method, route                 string
	status                        int
}

// tracer decides, per request, whether and how to make a span, and exports finished spans.
type tracer struct {
	service  string
	endpoint string // "" exports nothing
	drop     bool
	pod      string
	logger   interface{ Printf(string, ...any) }

	queue    chan otlpSpan
	client   *http.Client
	once     sync.Once
	dropped  atomic.Int64 // spans lost to a full queue
	failed   atomic.Int64 // export requests that failed
	exported atomic.Int64 // spans the endpoint accepted
	lastLog  atomic.Int64 // unix seconds of the last failure logged
}

func newTracer(role, pod string, logger interface{ Printf(string, ...any) }) *tracer {
	endpoint := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
	if endpoint == "" {
		if base := os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"); base != "" {
			endpoint = strings.TrimRight(base, "/") + "/v1/traces"
		}
	}
	drop, _ := strconv.ParseBool(os.Getenv("STANDIN_DROP_TRACE_CONTEXT"))
	return &tracer{
		service:  env("OTEL_SERVICE_NAME", role),
		endpoint: endpoint,
		drop:     drop,
		pod:      pod,
		logger:   logger,
		queue:    make(chan otlpSpan, exportQueue),
		client:   &http.Client{Timeout: exportTimeout},
	}
}

// middleware wraps the role's mux: it names the span after the pattern that serves the request
// (method and route, as the HTTP semantic conventions say) and records the status it answered.
func (t *tracer) middleware(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		incoming, ok := parseTraceparent(r.Header.Get(traceparentHeader))
		if !ok {
			mux.ServeHTTP(w, r)
			return
		}
		view := &traceView{TraceID: incoming.traceID, SpanID: randomHex(8), ParentSpanID: incoming.spanID,
			Sampled: incoming.sampled}
		if t.drop {
			// A service that loses the context: its own sampler starts a new trace with this span as root.
			view.TraceID, view.ParentSpanID, view.Sampled, view.Dropped = randomHex(16), "", true, true
		}
		view.Exported = view.Sampled && t.endpoint != ""
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		mux.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), traceKey{}, view)))
		if !view.Exported {
			return
		}
		_, pattern := mux.Handler(r)
		route := pattern
		if _, after, found := strings.Cut(pattern, " "); found {
			route = after
		}
		name := r.Method
		if route != "" {
			name += " " + route
		}
		t.enqueue(otlpSpan{traceID: view.TraceID, spanID: view.SpanID, parentSpanID: view.ParentSpanID, name: name,
			start: start, end: time.Now(), method: r.Method, route: route, status: rec.status})
	})
}

// enqueue hands a span to the exporter without ever waiting: a full queue drops the span.
func (t *tracer) enqueue(s otlpSpan) {
	t.once.Do(func() { go t.run() })
	select {
	case t.queue <- s:
	default:
		t.dropped.Add(1)
	}
}

func (t *tracer) run() {
	for first := range t.queue {
		batch := []otlpSpan{first}
	drain:
		for len(batch) < exportBatch {
			select {
			case s := <-t.queue:
				batch = append(batch, s)
			default:
				break drain
			}
		}
		if err := t.export(batch); err != nil {
			t.failed.Add(1)
			// One line per minute at most: a collector that is down must not flood the log.
			now := time.Now().Unix()
			if last := t.lastLog.Load(); now-last >= 60 && t.lastLog.CompareAndSwap(last, now) {
				t.logger.Printf("trace export to %s failed (%d span(s) lost): %v", t.endpoint, len(batch), err)
			}
			continue
		}
		t.exported.Add(int64(len(batch)))
	}
}

type otlpValue struct {
	StringValue *string `json:"stringValue,omitempty"`
	IntValue    *string `json:"intValue,omitempty"`
}

type otlpKV struct {
	Key   string    `json:"key"`
	Value otlpValue `json:"value"`
}

func str(key, v string) otlpKV { return otlpKV{Key: key, Value: otlpValue{StringValue: &v}} }
func integer(key string, v int) otlpKV {
	s := strconv.Itoa(v)
	return otlpKV{Key: key, Value: otlpValue{IntValue: &s}}
}

// payload is an ExportTraceServiceRequest in the OTLP/JSON encoding (hex IDs, int64 as strings).
func (t *tracer) payload(batch []otlpSpan) ([]byte, error) {
	spans := make([]map[string]any, 0, len(batch))
	for _, s := range batch {
		span := map[string]any{
			"traceId":           s.traceID,
			"spanId":            s.spanID,
			"name":              s.name,
			"kind":              spanKindServer,
			"startTimeUnixNano": strconv.FormatInt(s.start.UnixNano(), 10),
			"endTimeUnixNano":   strconv.FormatInt(s.end.UnixNano(), 10),
			"attributes": []otlpKV{
				str("http.request.method", s.method),
				str("http.route", s.route),
				integer("http.response.status_code", s.status),
			},
			"status": map[string]any{},
		}
		if s.parentSpanID != "" {
			span["parentSpanId"] = s.parentSpanID
		}
		if s.status >= 500 { // a server span is an error only for 5xx
			span["status"] = map[string]any{"code": statusCodeError}
		}
		spans = append(spans, span)
	}
	resource := []otlpKV{str("service.name", t.service), str("telemetry.sdk.name", "standin"),
		str("telemetry.sdk.language", "go")}
	if t.pod != "" {
		resource = append(resource, str("k8s.pod.name", t.pod))
	}
	return json.Marshal(map[string]any{"resourceSpans": []any{map[string]any{
		"resource":   map[string]any{"attributes": resource},
		"scopeSpans": []any{map[string]any{"scope": map[string]string{"name": "standin"}, "spans": spans}},
	}}})
}

func (t *tracer) export(batch []otlpSpan) error {
	body, err := t.payload(batch)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, t.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("the endpoint answered %s", resp.Status)
	}
	return nil
}
