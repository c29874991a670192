import CZlib
import Foundation

/// A problem opening or reading an input, naming the path and what to do.
public struct InputError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String
    public init(path: String, _ message: String) { self.path = path; self.message = message }
    public var description: String { "\(path): \(message)" }
}

/// The line of `buffer` that starts at `start` (before `limit`): `stop` is where its text ends (before
/// a carriage return), `end` the position of its newline (`limit` when the last line has none). The
/// one line scanner of Funnel's text readers (events, click-model tables, logged bandit feedback).
@inlinable
public func lineBounds(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ limit: Int) -> (stop: Int, end: Int) {
    var end = limit
    if start < limit, let base = buffer.baseAddress, let hit = memchr(base + start, 0x0A, limit - start) {
        end = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
    }
    var stop = end
    if stop > start && buffer[stop - 1] == 0x0D { stop -= 1 }
    return (stop, end)
}

/// A source of bytes: a plain file descriptor, or a gzip stream over one.
public protocol ByteStream: AnyObject {
    /// Reads up to `buffer.count` bytes; 0 means end of input.
    func read(_ buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int
}

/// Reads a file descriptor, with a few bytes that can be put back after sniffing.
public final class FileStream: ByteStream {
    public let fd: Int32
    public let path: String
    public let ownsDescriptor: Bool
    var pushedBack: [UInt8] = []

    public init(path: String) throws(InputError) {
        self.path = path
        if path == "-" {
            fd = 0
            ownsDescriptor = false
        } else {
            fd = open(path, O_RDONLY)
            ownsDescriptor = true
            if fd < 0 { throw InputError(path: path, "cannot open (\(String(cString: strerror(errno)))); check the path and its permissions") }
        }
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func read(_ buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        if !pushedBack.isEmpty {
            let n = min(buffer.count, pushedBack.count)
            pushedBack.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
            pushedBack.removeFirst(n)
            return n
        }
        while true {
            let n = Foundation.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw InputError(path: path, "read failed (\(String(cString: strerror(errno))))")
        }
    }

    /// The first `count` bytes (fewer at end of input), left in place for the next read.
    public func peek(_ count: Int) throws(InputError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var have = 0
        while have < count {
            let n = try readAppending(self, into: &out, at: have)
            if n == 0 { break }
            have += n
        }
        out.removeLast(count - have)
        pushedBack = out + pushedBack
        return out
    }
}

/// Inflates gzip data (concatenated members included) from an inner stream.
public final class GzipStream: ByteStream {
    public let inner: FileStream
    var z = z_stream()
    let inputCapacity = 1 << 18
    let input: UnsafeMutablePointer<UInt8>
    var inputEnd = false
    var finished = false
    var sawData = false

    public init(_ inner: FileStream) throws(InputError) {
        self.inner = inner
        input = .allocate(capacity: inputCapacity)
        let status = inflateInit2_(&z, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK {
            input.deallocate()
            throw InputError(path: inner.path, "cannot start gzip decoding (zlib status \(status))")
        }
    }

    deinit {
        inflateEnd(&z)
        input.deallocate()
    }

    public func read(_ buffer: UnsafeMutableRawBufferPointer) throws(InputError) -> Int {
        while !finished {
            if z.avail_in == 0 && !inputEnd {
                let n = try inner.read(UnsafeMutableRawBufferPointer(start: input, count: inputCapacity))
                if n == 0 { inputEnd = true } else { z.next_in = input; z.avail_in = UInt32(n); sawData = true }
            }
            if z.avail_in == 0 && inputEnd {
                // Clean end only between members (or for an empty file).
                if z.total_in == 0 || !sawData { finished = true; return 0 }
                throw InputError(path: inner.path, "gzip data ends early (truncated file?); re-create the file")
            }
            z.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            z.avail_out = UInt32(buffer.count)
            let status = inflate(&z, Z_NO_FLUSH)
            let produced = buffer.count - Int(z.avail_out)
            if status == Z_STREAM_END {
                // Another member may follow; stop when the input is exhausted.
                if z.avail_in == 0 {
                    let n = try inner.read(UnsafeMutableRawBufferPointer(start: input, count: inputCapacity))
                    if n == 0 { inputEnd = true; finished = true } else { z.next_in = input; z.avail_in = UInt32(n) }
                }
                if !finished { inflateReset(&z) }
                if produced > 0 { return produced }
                continue
            }
            if status != Z_OK && status != Z_BUF_ERROR {
                throw InputError(path: inner.path, "corrupt gzip data (zlib status \(status)); re-compress the file or pass it uncompressed")
            }
            if produced > 0 { return produced }
        }
        return 0
    }
}

/// The whole content of a file, decompressed when it starts with the gzip magic bytes (tables
/// for model training and evaluation).
public func readFileBytes(_ path: String) throws(InputError) -> [UInt8] {
    let raw = try FileStream(path: path)
    let gz = try raw.peek(2) == [0x1F, 0x8B]
    let stream: ByteStream = gz ? try GzipStream(raw) : raw
    var out: [UInt8] = []
    // A plain file's size is known: one allocation, not a doubling growth (two copies alive at once).
    var info = stat()
    if !gz && raw.ownsDescriptor && fstat(raw.fd, &info) == 0 && info.st_size > 0 { out.reserveCapacity(Int(info.st_size)) }
    let capacity = 1 << 20
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 8)
    defer { buffer.deallocate() }
    while true {
        let n = try stream.read(buffer)
        if n == 0 { break }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
    }
    return out
}

/// Reads from `stream` into `buffer[offset...]` (already sized); returns the byte count.
public func readAppending(_ stream: ByteStream, into buffer: inout [UInt8], at offset: Int) throws(InputError) -> Int {
    let result: Result<Int, InputError> = buffer.withUnsafeMutableBytes { b in
        do throws(InputError) {
            return .success(try stream.read(UnsafeMutableRawBufferPointer(rebasing: b[offset...])))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}
