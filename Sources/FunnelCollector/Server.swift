import Foundation
import FunnelBase
import FunnelPipeline
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// How `funnel serve` runs.
public struct CollectorSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Largest body, as sent and once inflated (413 past it).
    public var maxBodyBytes = defaultMaxBodyBytes
    /// Requests a second per key, and the burst a key may spend at once (429 past them).
    public var rateLimit = 50.0
    public var rateBurst = 100.0
    /// A connection that sends nothing for this long (a slow or stalled client, a request left
    /// half sent) is closed, so it cannot hold the server's resources.
    public var idleTimeoutSeconds = 30.0
    public var configPath: String?
    public var plan = PartitionPlan()
    public init() {}
}

/// The collector's routes over a store and a key ring (see docs/collector.md):
/// `POST /v1/events` (scope ingest), `GET /v1/report` (scope report), `GET /healthz`, `GET /readyz`,
/// `GET /metrics` (Prometheus; open, like the health routes: bind to loopback or filter it at the proxy).
public struct Collector: Sendable {
    public let store: any EventStore
    public let keys: KeyRing
    public let settings: CollectorSettings
    let committer: GroupCommitter
    let limiter: RateLimiter
    let logger: Logger
    public let metrics: CollectorMetrics

    public init(store: any EventStore, keys: KeyRing, settings: CollectorSettings, logger: Logger = Logger(label: "funnel.collector")) {
        self.store = store
        self.keys = keys
        self.settings = settings
        self.logger = logger
        let metrics = CollectorMetrics()
        self.metrics = metrics
        committer = GroupCommitter(store: store) { requests, events, seconds in
            metrics.committed(requests: requests, events: events, seconds: seconds)
        }
        limiter = RateLimiter(rate: settings.rateLimit, burst: settings.rateBurst)
    }

    /// The router of every route.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        router.add(middleware: UnknownRouteMiddleware())
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
        }
        router.get("/healthz") { _, _ in json(.ok, .object([("status", .string("ok"))])) }
        router.get("/readyz") { _, _ in
            do {
                let events = try await offloaded { try store.probe() }
                var members: [(String, JSONValue)] = [("status", .string("ready"))]
                if let events { members.append(("events", .int(events))) }
                return json(.ok, .object(members))
            } catch {
                return json(.serviceUnavailable, .object([("status", .string("store unavailable"))]))
            }
        }
        router.post("/v1/events") { request, _ in try await ingest(request) }
        router.get("/v1/report") { request, _ in try await report(request) }
        return router
    }

    /// The key of a request allowed to use a route of scope `needed`, or the refusal to send.
    func authorize(_ request: Request, _ needed: KeyScope) -> Result<APIKey, Refusal> {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            return .failure(Refusal(.unauthorized, "send an API key as 'Authorization: Bearer <key>' (create one with `funnel keys create`)"))
        }
        guard let key = keys.authenticate(String(header.dropFirst("Bearer ".count)).trimmingCharacters(in: .whitespaces)) else {
            return .failure(Refusal(.unauthorized, "the API key is not valid"))
        }
        guard key.scope.allows(needed) else {
            return .failure(Refusal(.forbidden, "this key's scope is \(key.scope.rawValue); this route needs \(needed.rawValue)"))
        }
        if let wait = limiter.take(key.id) {
            var refusal = Refusal(.tooManyRequests, "over the rate limit of \(settings.rateLimit) requests a second per key; retry later")
            refusal.retryAfter = Int(wait.rounded(.up))
            return .failure(refusal)
        }
        return .success(key)
    }

    func ingest(_ request: Request) async throws -> Response {
        if case .failure(let refusal) = authorize(request, .ingest) { return refusal.response }
        if let type = request.headers[.contentType], !acceptedBodyType(type) {
            return Refusal(.unsupportedMediaType, "Content-Type \(type) is not accepted; send application/json (an array of events) or application/x-ndjson (one event a line)").response
        }
        var request = request
        let limit = settings.maxBodyBytes
        var body: [UInt8]
        do {
            let buffer = try await request.collectBody(upTo: limit)
            body = Array(buffer.readableBytesView)
        } catch {
            return Refusal(.contentTooLarge, "the body is over the \(limit)-byte limit; send fewer events per request").response
        }
        if let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" {
            guard encoding == "gzip" else {
                return Refusal(.unsupportedMediaType, "Content-Encoding \(encoding) is not supported; send gzip or no encoding").response
            }
            do { body = try inflateBody(body, limit: limit) } catch is BodyTooLarge {
                return Refusal(.contentTooLarge, "the body inflates past the \(limit)-byte limit; send fewer events per request").response
            } catch {
                return Refusal(.badRequest, "\(error)").response
            }
        }
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            return Refusal(.badRequest, "the body is empty; send a JSON array of events or one event a line").response
        }
        var batch: IngestBatch
        do { batch = try splitBody(body) } catch { return Refusal(.badRequest, error.description).response }
        if let key = request.headers[idempotencyKeyField] {
            guard !key.isEmpty, key.utf8.count <= 200 else { return Refusal(.badRequest, "Idempotency-Key must be 1 to 200 characters").response }
            batch.idempotencyKey = key
        }
        let outcome: CommitOutcome
        do { outcome = try await committer.submit(batch) } catch {
            logger.error("commit failed", metadata: ["error": "\(error)"])
            return Refusal(.serviceUnavailable, "the store could not commit the events; nothing of this request was stored, send it again").response
        }
        metrics.ingested(outcome, batch)
        if outcome.replayed {
            logger.info("replayed", metadata: ["events": "\(batch.events.count + batch.quarantined.count)"])
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[idempotentReplayedField] = "true"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: outcome.answer)))
        }
        logger.info("ingested", metadata: ["accepted": "\(outcome.accepted)", "duplicates": "\(outcome.duplicates)", "quarantined": "\(batch.quarantined.count)"])
        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: outcome.answer)))
    }

    func report(_ request: Request) async throws -> Response {
        if case .failure(let refusal) = authorize(request, .report) { return refusal.response }
        let experiment = request.uri.queryParameters.get("experiment")
        let (store, settings) = (store, settings)
        let result: Result<JSONValue, any Error>
        do {
            result = .success(try await offloaded { try reportFromStore(store, configPath: settings.configPath, experiment: experiment, plan: settings.plan) })
        } catch { result = .failure(error) }
        switch result {
        case .success(let document): return json(.ok, document)
        case .failure(let error): return Refusal(.unprocessableContent, "\(error)").response
        }
    }
}

/// Answers a request no route takes with JSON saying what to do: 405 with `Allow` for a known path
/// and the wrong method, 404 for an unknown path.
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Each route's path and method.
    static var routes: [String: [HTTPRequest.Method]] {
        ["/v1/events": [.post], "/v1/report": [.get], "/healthz": [.get], "/readyz": [.get], "/metrics": [.get]]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        if let methods = Self.routes[path], !methods.contains(request.method) {
            var refusal = Refusal(.methodNotAllowed, "\(path) takes \(methods.map(\.rawValue).joined(separator: ", ")), not \(request.method.rawValue)")
            refusal.allow = methods.map(\.rawValue).joined(separator: ", ")
            return refusal.response
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            return Refusal(.notFound, "no route \(path): the collector serves POST /v1/events, GET /v1/report, /healthz, /readyz and /metrics (docs/openapi.yaml)").response
        }
    }
}

/// Runs blocking store work on a dispatch queue, off the server's threads (the PostgreSQL store
/// waits on its driver's event loops, which must never wait on themselves).
func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
        }
    }
}

/// The media types `POST /v1/events` reads (parameters such as `charset=utf-8` allowed): JSON and
/// the names JSON Lines goes by. A body without a Content-Type is read the same way.
func acceptedBodyType(_ header: String) -> Bool {
    let type = header.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
    return ["application/json", "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
            "application/jsonlines", "text/plain"].contains(type)
}

/// A refused request: its status, a message saying what to do, and for 429 when to retry.
struct Refusal: Error {
    var status: HTTPResponse.Status
    var message: String
    var retryAfter: Int? = nil
    /// For 405: the methods the path takes.
    var allow: String? = nil
    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        self.message = message
    }

    var response: Response {
        var r = json(status, .object([("error", .string(message))]))
        if let retryAfter { r.headers[.retryAfter] = String(max(retryAfter, 1)) }
        if let allow { r.headers[.allow] = allow }
        return r
    }
}

let idempotencyKeyField = HTTPField.Name("Idempotency-Key")!
let idempotentReplayedField = HTTPField.Name("Idempotent-Replayed")!

func json(_ status: HTTPResponse.Status, _ value: JSONValue) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: ResponseBody(byteBuffer: ByteBuffer(string: value.serialized() + "\n")))
}

/// Runs the collector until SIGTERM or SIGINT; in-flight requests finish first.
public func runCollector(_ collector: Collector, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
    var logger = Logger(label: "funnel.serve")
    logger.logLevel = .info
    let app = Application(
        router: collector.router(),
        server: .http1(configuration: .init(idleTimeout: .milliseconds(Int64(collector.settings.idleTimeoutSeconds * 1000)))),
        configuration: .init(address: .hostname(collector.settings.host, port: collector.settings.port), serverName: "funnel"),
        onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? collector.settings.port) },
        logger: logger)
    try await app.runService()
}
