import Foundation
import FunnelEvents
import HTTPTypes
import Hummingbird
import Prometheus

/// The collector's Prometheus metrics (`GET /metrics`), in a registry of its own.
public final class CollectorMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let accepted: Counter
    let duplicates: Counter
    let quarantined: [QuarantineReason: Counter]
    let replayed: Counter
    let commitSeconds: DurationHistogram
    let commitBatches: ValueHistogram
    let commitEvents: ValueHistogram

    static let latencyBuckets: [Duration] = [.microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
                                             .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func counter(_ name: String, _ help: String, _ labels: [(String, String)] = []) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "funnel", metricName: name, unitName: "total", helpText: help), labels: labels)
        }
        accepted = counter("events_accepted", "Events stored.")
        duplicates = counter("events_duplicate", "Events received again (same user_id and event_id) and not stored twice.")
        replayed = counter("requests_replayed", "Requests sent again under an Idempotency-Key already committed.")
        var byReason: [QuarantineReason: Counter] = [:]
        for reason in QuarantineReason.allCases {
            byReason[reason] = counter("events_quarantined", "Events quarantined, by reason.", [("reason", reason.rawValue)])
        }
        quarantined = byReason
        commitSeconds = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "funnel", metricName: "commit_duration", unitName: "seconds", helpText: "Time to commit one transaction durably."),
            labels: [], buckets: Self.latencyBuckets)
        commitBatches = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "funnel", metricName: "commit_requests", unitName: "", helpText: "Requests committed together in one transaction (group commit)."),
            labels: [], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256])
        commitEvents = registry.makeValueHistogram(
            descriptor: MetricNameDescriptor(namespace: "funnel", metricName: "commit_events", unitName: "", helpText: "Events (stored, duplicate or quarantined) in one transaction."),
            labels: [], buckets: [1, 10, 100, 1_000, 10_000, 100_000])
    }

    func requestDuration(route: String, method: String, status: Int) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(namespace: "funnel", metricName: "http_request_duration", unitName: "seconds", helpText: "Requests by route, method and status, and their latency."),
            labels: [("route", route), ("method", method), ("status", String(status))], buckets: Self.latencyBuckets)
    }

    func committed(requests: Int, events: Int, seconds: Double) {
        commitSeconds.record(.nanoseconds(Int64(seconds * 1e9)))
        commitBatches.record(Double(requests))
        commitEvents.record(Double(events))
    }

    func ingested(_ outcome: CommitOutcome, _ batch: IngestBatch) {
        if outcome.replayed { replayed.increment(); return }
        accepted.increment(by: Int64(outcome.accepted))
        duplicates.increment(by: Int64(outcome.duplicates))
        for q in batch.quarantined { quarantined[q.reason]?.increment() }
    }

    /// The exposition text.
    public func render() -> String { registry.emitToString() }
}

/// Records every request's route (the matched pattern, so ids in paths do not multiply series),
/// method, status and latency.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: CollectorMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.requestDuration(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: response.status.code)
                .record(ContinuousClock.now - start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            metrics.requestDuration(route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status)
                .record(ContinuousClock.now - start)
            throw error
        }
    }
}
