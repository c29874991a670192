import Foundation
import FunnelBase
import FunnelConfig
import FunnelEvents
import FunnelPipeline

/// Writes every stored event, one line each, in user order (`funnel export`).
public func exportEvents(_ store: any EventStore, to path: String) throws {
    let temporary = path + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw StoreError("cannot write \(path): check the folder's permissions") }
    do {
        try writeLines(store, to: fd)
        guard fsync(fd) == 0 else { throw StoreError("cannot sync \(temporary): \(String(cString: strerror(errno)))") }
        close(fd)
    } catch {
        close(fd)
        unlink(temporary)
        throw StoreError("cannot export to \(path): \(error)")
    }
    guard rename(temporary, path) == 0 else {
        unlink(temporary)
        throw StoreError("cannot move the export into \(path): \(String(cString: strerror(errno)))")
    }
}

/// Writes the store's lines to `fd` as JSON Lines, in user order, a megabyte at a time.
func writeLines(_ store: any EventStore, to fd: Int32) throws {
    var buffer: [UInt8] = []
    buffer.reserveCapacity(1 << 20)
    func flush() throws {
        try buffer.withUnsafeBytes { raw in
            var at = 0
            while at < raw.count {
                let n = write(fd, raw.baseAddress! + at, raw.count - at)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw StoreError("cannot write the store's events (\(String(cString: strerror(errno))))")
                }
                at += n
            }
        }
        buffer.removeAll(keepingCapacity: true)
    }
    try store.forEachLine { line in
        buffer.append(contentsOf: line)
        buffer.append(0x0A)
        if buffer.count >= 1 << 20 { try flush() }
    }
    try flush()
}

/// Runs `body` with the path of a pipe that carries the store's events as JSON Lines in user
/// order, written by another thread while `body` reads: the report reads the store as it reads a
/// file, in one pass and within its memory budget, never holding the whole store.
public func withStoreAsInput<T>(_ store: any EventStore, _ body: (EventSource) throws -> T) throws -> T {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw StoreError("cannot open a pipe to read the store: \(String(cString: strerror(errno)))") }
    let (readEnd, writeEnd) = (fds[0], fds[1])
    signal(SIGPIPE, SIG_IGN)   // a reader that stops early ends the writer with EPIPE, not the process
    let writer = PipeWriter(store: store, fd: writeEnd)
    let thread = Thread { writer.run() }
    thread.start()
    var source = EventSource(paths: ["/dev/fd/\(readEnd)"], format: .jsonl)
    source.sizeHint = try store.counts().bytes
    let result: Result<T, any Error>
    do { result = .success(try body(source)) } catch { result = .failure(error) }
    close(readEnd)
    writer.done.wait()
    if case .success = result, let failure = writer.failure { throw failure }
    return try result.get()
}

/// The thread that feeds the store's lines into a pipe.
final class PipeWriter: @unchecked Sendable {
    let store: any EventStore
    let fd: Int32
    var failure: StoreError?
    let done = DispatchSemaphore(value: 0)

    init(store: any EventStore, fd: Int32) {
        self.store = store
        self.fd = fd
    }

    func run() {
        defer { close(fd); done.signal() }
        do {
            try writeLines(store, to: fd)
        } catch let error as StoreError {
            failure = StoreError("the report stopped reading the store: \(error)")
        } catch {
            failure = StoreError("cannot read the store: \(error)")
        }
    }
}

/// The report of the stored events: `funnel report --store` and `GET /v1/report`. Its reading
/// counters are those of the ingestion (events received = stored + duplicate + quarantined), so
/// it equals the report of the lines that were posted, while `funnel report --events` on an export
/// counts the export's lines (stored events only).
public func reportFromStore(_ store: any EventStore, configPath: String?, itemsPath: String? = nil, experiment: String? = nil,
                            plan: PartitionPlan = PartitionPlan(), sequential: SequentialMethod? = nil, asOf: Int64? = nil) throws -> JSONValue {
    try withStoreAsInput(store) { source in
        var job = ReportJob(source: source, configPath: configPath, itemsPath: itemsPath, plan: plan)
        job.experiment = experiment
        job.sequential = sequential
        job.asOf = asOf
        job.upstream = try store.counts().upstream
        return try job.run()
    }
}
