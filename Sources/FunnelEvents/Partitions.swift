import Foundation
import FunnelBase

/// Validated events in a compact binary form: one record per event, every field the counting rules
/// read, strings inline. The form in which the partitioned reader routes events by user and spills
/// them to temporary files; decoding gives back the same `ParsedEvent`s.
///
/// Record: type u8, flags u8 (1 bot, 2 viewability, 4 propensity), ts i64, position i32, quantity
/// i32; nine strings (event_id, user_id, experiment, variant, item_id, surface, impression_id,
/// order_id, request_id), each a varint (length + 1, 0 = absent) and its bytes; the two viewability
/// doubles and the propensity when flagged; a varint count of context pairs and each pair's two
/// strings; a varint count of purchase lines and each line's item, quantity (i32) and price (f64).
enum EventRecord {
    /// Writes a record's parts through a pointer into room measured beforehand.
    struct Writer {
        var at: UnsafeMutableRawPointer

        @inline(__always) mutating func put<T>(_ v: T) {
            at.storeBytes(of: v, as: T.self)
            at += MemoryLayout<T>.size
        }

        @inline(__always) mutating func byte(_ b: UInt8) { at.storeBytes(of: b, as: UInt8.self); at += 1 }

        @inline(__always) mutating func varint(_ v: Int) {
            var x = UInt(v)
            while x >= 0x80 { byte(UInt8(x & 0x7F) | 0x80); x >>= 7 }
            byte(UInt8(x))
        }

        @inline(__always) mutating func string(_ r: StringRef, _ arena: UnsafeBufferPointer<UInt8>) {
            if r.isNone { byte(0); return }
            varint(Int(r.length) + 1)
            if r.length > 0 { at.copyMemory(from: arena.baseAddress! + Int(r.offset), byteCount: Int(r.length)) }
            at += Int(r.length)
        }
    }

    @inline(__always) static func varintSize(_ v: Int) -> Int {
        var x = UInt(v), n = 1
        while x >= 0x80 { n += 1; x >>= 7 }
        return n
    }

    @inline(__always) static func size(_ r: StringRef) -> Int {
        r.isNone ? 1 : varintSize(Int(r.length) + 1) + Int(r.length)
    }

    /// Appends the record of `e` (strings in `arena`, whose bytes are `bytes`).
    static func encode(_ e: ParsedEvent, arena: ParseArena, _ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var n = 2 + 8 + 4 + 4
        n += size(e.eventID) + size(e.user) + size(e.experiment) + size(e.variant) + size(e.item)
        n += size(e.surface) + size(e.impressionID) + size(e.order) + size(e.request)
        if e.viewable != nil { n += 16 }
        if e.propensity != nil { n += 8 }
        n += varintSize(Int(e.contextCount)) + varintSize(Int(e.linesCount))
        for k in Int(e.contextStart)..<Int(e.contextStart + e.contextCount) {
            n += size(arena.contextPairs[k].key) + size(arena.contextPairs[k].value)
        }
        for k in Int(e.linesStart)..<Int(e.linesStart + e.linesCount) { n += size(arena.lines[k].item) + 12 }
        withUnsafeTemporaryAllocation(byteCount: n, alignment: 8) { room in
            var w = Writer(at: room.baseAddress!)
            w.byte(e.type.rawValue)
            w.byte((e.bot ? 1 : 0) | (e.viewable != nil ? 2 : 0) | (e.propensity != nil ? 4 : 0))
            w.put(e.ts)
            w.put(e.position)
            w.put(e.quantity)
            w.string(e.eventID, bytes); w.string(e.user, bytes); w.string(e.experiment, bytes)
            w.string(e.variant, bytes); w.string(e.item, bytes); w.string(e.surface, bytes)
            w.string(e.impressionID, bytes); w.string(e.order, bytes); w.string(e.request, bytes)
            if let v = e.viewable { w.put(v.fraction); w.put(v.ms) }
            if let p = e.propensity { w.put(p) }
            w.varint(Int(e.contextCount))
            for k in Int(e.contextStart)..<Int(e.contextStart + e.contextCount) {
                w.string(arena.contextPairs[k].key, bytes)
                w.string(arena.contextPairs[k].value, bytes)
            }
            w.varint(Int(e.linesCount))
            for k in Int(e.linesStart)..<Int(e.linesStart + e.linesCount) {
                let l = arena.lines[k]
                w.string(l.item, bytes)
                w.put(l.quantity)
                w.put(l.price)
            }
            precondition(w.at == room.baseAddress! + n, "an event record is the size measured for it")
            out.append(contentsOf: UnsafeRawBufferPointer(room))
        }
    }

    /// A cursor over encoded records.
    struct Reader {
        let base: UnsafeRawBufferPointer
        var at = 0

        @inline(__always) mutating func take<T>(_: T.Type) -> T {
            let v = base.loadUnaligned(fromByteOffset: at, as: T.self)
            at += MemoryLayout<T>.size
            return v
        }

        @inline(__always) mutating func varint() -> Int {
            var x = 0, shift = 0
            while true {
                let b = base[at]; at += 1
                x |= Int(b & 0x7F) << shift
                if b < 0x80 { return x }
                shift += 7
            }
        }

        /// A string: referred to in place when `arena` shares the records' bytes, else copied.
        @inline(__always) mutating func string(into arena: inout ParseArena) -> StringRef {
            let n = varint()
            if n == 0 { return .none }
            let length = n - 1
            if arena.sourceCount > 0 {
                defer { at += length }
                return arena.sourceString(at: at, count: length)
            }
            let offset = arena.bytes.count
            let slice = UnsafeRawBufferPointer(rebasing: base[at..<at + length])
            arena.bytes.append(contentsOf: slice)
            at += length
            let hash = slice.withMemoryRebound(to: UInt8.self) { hashBytes($0) }
            return StringRef(offset: Int32(offset), length: Int32(length), hash: hash)
        }

        /// Decodes one record into `arena`.
        mutating func event(into arena: inout ParseArena) -> ParsedEvent {
            var e = ParsedEvent()
            e.type = EventType(rawValue: take(UInt8.self))!
            let flags = take(UInt8.self)
            e.bot = flags & 1 != 0
            e.ts = take(Int64.self)
            e.position = take(Int32.self)
            e.quantity = take(Int32.self)
            e.eventID = string(into: &arena)
            e.user = string(into: &arena)
            e.experiment = string(into: &arena)
            e.variant = string(into: &arena)
            e.item = string(into: &arena)
            e.surface = string(into: &arena)
            e.impressionID = string(into: &arena)
            e.order = string(into: &arena)
            e.request = string(into: &arena)
            if flags & 2 != 0 { let f = take(Double.self); e.viewable = (f, take(Double.self)) }
            if flags & 4 != 0 { e.propensity = take(Double.self) }
            let pairs = varint()
            e.contextStart = Int32(arena.contextPairs.count)
            e.contextCount = Int32(pairs)
            for _ in 0..<pairs {
                let k = string(into: &arena)
                arena.contextPairs.append((k, string(into: &arena)))
            }
            let lines = varint()
            e.linesStart = Int32(arena.lines.count)
            e.linesCount = Int32(lines)
            for _ in 0..<lines {
                let item = string(into: &arena)
                let q = take(Int32.self)
                arena.lines.append(ParsedLine(item: item, quantity: q, price: take(Double.self)))
            }
            return e
        }
    }
}

/// Why a partition could not be written or read back.
public struct PartitionError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

/// Events routed into `count` partitions by a hash of `user_id`, in input order within each: held
/// in memory up to a budget, then spilled to one temporary file per partition (in `folder`) in the
/// compact binary form of `EventRecord`. Every user's events land in one partition, so each can be
/// counted alone (DESIGN.md §7).
public final class PartitionStore: @unchecked Sendable {
    public let count: Int
    /// Bytes of encoded events held in memory before spilling.
    public let memoryBudget: Int
    let folder: String
    var blocks: [[[UInt8]]]
    var held = 0
    var files: [FileHandle?]
    var paths: [String]
    public private(set) var spilled = false
    /// Encoded bytes per partition (memory and files).
    public private(set) var sizes: [Int]
    /// Events per partition.
    public private(set) var events: [Int]

    public init(count: Int, memoryBudget: Int, folder: String) {
        self.count = count
        self.memoryBudget = memoryBudget
        self.folder = folder
        blocks = [[[UInt8]]](repeating: [], count: count)
        files = [FileHandle?](repeating: nil, count: count)
        paths = (0..<count).map { (folder as NSString).appendingPathComponent("funnel-partition-\(getpid())-\($0).bin") }
        sizes = [Int](repeating: 0, count: count)
        events = [Int](repeating: 0, count: count)
    }

    deinit { removeFiles() }

    /// Deletes the temporary files (also on deinit).
    public func removeFiles() {
        for (i, f) in files.enumerated() where f != nil {
            try? f?.close()
            files[i] = nil
            unlink(paths[i])
        }
    }

    /// The partition of a user (by the hash of its id).
    @inline(__always) public func partition(ofUserHash h: UInt64) -> Int {
        Int((h >> 17) % UInt64(count))
    }

    /// Adds one chunk's encoded blocks (one per partition, in input order after the blocks already
    /// added); spills everything to the partitions' files once the budget is passed.
    func add(_ encoded: [[UInt8]], events counts: [Int]) throws(PartitionError) {
        for p in 0..<count where !encoded[p].isEmpty {
            sizes[p] += encoded[p].count
            events[p] += counts[p]
            if spilled {
                try write(encoded[p], to: p)
            } else {
                blocks[p].append(encoded[p])
                held += encoded[p].count
            }
        }
        if !spilled && held > memoryBudget {
            spilled = true
            for p in 0..<count {
                for b in blocks[p] { try write(b, to: p) }
                blocks[p] = []
            }
            held = 0
        }
    }

    func write(_ bytes: [UInt8], to p: Int) throws(PartitionError) {
        if files[p] == nil {
            guard FileManager.default.createFile(atPath: paths[p], contents: nil), let h = FileHandle(forWritingAtPath: paths[p]) else {
                throw PartitionError(message: "cannot create a temporary file in \(folder) to spill events to; set --temp-dir (or TMPDIR) to a writable folder with free space, or raise --memory")
            }
            files[p] = h
        }
        do { try files[p]!.write(contentsOf: bytes) } catch {
            throw PartitionError(message: "cannot write to the temporary file \(paths[p]) (\(error.localizedDescription)); the disk may be full: set --temp-dir (or TMPDIR) to a folder with space for about \(sizes.reduce(0, +) >> 20) MiB, or raise --memory")
        }
    }

    /// The log of partition `p`: its events decoded (strings rehashed) and appended in input
    /// order; frees the partition's memory.
    public func log(_ p: Int) throws(PartitionError) -> EventLog {
        var data: [UInt8]
        if spilled {
            try? files[p]?.close()
            files[p] = nil
            guard let d = readWholeFile(paths[p], expected: sizes[p]) else {
                throw PartitionError(message: "cannot read back the temporary file \(paths[p]); was it removed while Funnel ran?")
            }
            unlink(paths[p])
            data = d
        } else {
            data = []
            data.reserveCapacity(sizes[p])
            for b in blocks[p] { data.append(contentsOf: b) }
            blocks[p] = []
        }
        guard data.count == sizes[p] else {
            throw PartitionError(message: "the temporary file \(paths[p]) holds \(data.count) bytes, \(sizes[p]) were written; the disk may be full or the file was changed")
        }
        var log = EventLog()
        log.reserve(events: events[p])
        // Strings are interned straight from the records (a partition past 2 GiB copies them).
        var arena = data.count <= Int(Int32.max) ? ParseArena(source: data) : ParseArena()
        data.withUnsafeBytes { raw in
            var r = EventRecord.Reader(base: raw)
            while r.at < raw.count {
                arena.removeAll()
                let e = r.event(into: &arena)
                log.append(e, arena: arena)
            }
        }
        return log
    }
}

extension EventReader {
    /// Reads every file of `paths` once and routes the valid events into `store` by user; returns
    /// the reading counters (lines read, quarantined) and the experiments named by exposures.
    /// Quarantined lines go to `onQuarantine` in input order, as with `read`.
    public static func route(
        paths: [String], format: InputFormat = .auto, into store: PartitionStore,
        onProgress: (@Sendable (Int) -> Void)? = nil, onQuarantine: QuarantineHandler? = nil
    ) throws(InputError) -> ReadCounters {
        var files: [String] = []
        for p in paths { files += try expand(p) }
        let state = RouteState(store: store)
        for (index, file) in files.enumerated() {
            let next = try openChunks(file: file, index: index, format: format)
            try pumpRouted(next, files: files, state: state, onProgress: onProgress, onQuarantine: onQuarantine)
            if let e = state.error { throw InputError(path: file, e.message) }
        }
        return state.counters
    }

    /// Parses chunks and encodes each accepted event into its user's partition block (`pipeline`),
    /// the previous batch handed to the store in input order.
    static func pumpRouted(_ next: @escaping () throws(InputError) -> Chunk?, files: [String], state: RouteState,
                           onProgress: (@Sendable (Int) -> Void)?, onQuarantine: QuarantineHandler?) throws(InputError) {
        let store = state.store
        let parts = store.count
        try pipeline(next, bytesRead: { state.bytesRead += $0; return state.bytesRead }, onProgress: onProgress, parse: { chunk in
            // Each accepted event is encoded into its partition's block at once, and the arena
            // emptied: no array of parsed events, a small, hot arena.
            var parser = EventLineParser(source: chunk.bytes)
            // Records take about half the JSON's bytes: room enough that no block regrows.
            let room = chunk.bytes.count / max(parts, 1) * 3 / 4 + 256
            var encoded = (0..<parts).map { _ in [UInt8](unsafeUninitializedCapacity: room) { _, n in n = 0 } }
            var counts = [Int](repeating: 0, count: parts)
            let (rejects, nonBlank) = parseLines(chunk, &parser) { e, parser in
                let p = store.partition(ofUserHash: e.user.hash)
                parser.arena.bytes.withUnsafeBufferPointer { bytes in
                    EventRecord.encode(e, arena: parser.arena, bytes, to: &encoded[p])
                }
                counts[p] += 1
                parser.arena.removeAll()
            }
            return RoutedChunk(file: chunk.file, rejects: rejects, nonBlankLines: nonBlank, encoded: encoded, events: counts)
        }) { routed in
            state.add(routed, files: files, onQuarantine: onQuarantine)
            return state.error == nil
        }
    }
}

/// Reads the next batch of chunks (on a worker, beside the parsing of the current batch).
final class NextBatch: @unchecked Sendable {
    let next: () throws(InputError) -> Chunk?
    let size: Int
    var chunks: [Chunk] = []
    var error: InputError? = nil
    init(next: @escaping () throws(InputError) -> Chunk?, size: Int) { self.next = next; self.size = size }
    func read() {
        do throws(InputError) {
            while chunks.count < size, let c = try next() { chunks.append(c) }
        } catch { self.error = error }
    }
}

/// One chunk parsed, its valid events encoded per partition.
struct RoutedChunk: Sendable {
    var file: Int
    var rejects: [QuarantineRow]
    var nonBlankLines: Int
    var encoded: [[UInt8]]
    var events: [Int]
}

/// The routing in progress, shared with the task that hands chunks to the store.
final class RouteState: @unchecked Sendable {
    let store: PartitionStore
    var counters = ReadCounters()
    var bytesRead = 0
    var error: PartitionError? = nil
    init(store: PartitionStore) { self.store = store }

    func add(_ chunks: [RoutedChunk], files: [String], onQuarantine: QuarantineHandler?) {
        for chunk in chunks {
            counters.eventsRead += chunk.nonBlankLines
            for var row in chunk.rejects {
                counters.quarantined[row.rejection.reason, default: 0] += 1
                row.file = files[chunk.file]
                onQuarantine?(row)
            }
            if error == nil {
                do throws(PartitionError) { try store.add(chunk.encoded, events: chunk.events) } catch { self.error = error }
            }
        }
    }
}


/// The bytes of the file at `path` read straight into one array: at most `expected + 1` of them,
/// so that a file of another length shows as one (the caller compares), or nil when it cannot be read.
func readWholeFile(_ path: String, expected: Int) -> [UInt8]? {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var failed = false
    let data = [UInt8](unsafeUninitializedCapacity: expected + 1) { buffer, initialized in
        var filled = 0
        while filled < buffer.count {
            let got = read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if got < 0 { if errno == EINTR { continue }; failed = true; break }
            if got == 0 { break }
            filled += got
        }
        initialized = filled
    }
    return failed ? nil : data
}
