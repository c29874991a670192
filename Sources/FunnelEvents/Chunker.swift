import Foundation
import FunnelBase

/// A block of whole input lines handed to a parser thread.
struct Chunk: Sendable {
    /// Index into the reader's file names.
    var file: Int
    /// Line number (1-based) of the first line in `bytes`.
    var firstLine: Int
    /// JSON Lines text, `\n`-separated.
    var bytes: [UInt8]
    /// CSV inputs: the source line number of each JSON line, and the raw record for quarantine.
    var csvLines: [Int]? = nil
    var csvRaw: [[UInt8]]? = nil
    /// The line was longer than the reader holds; `bytes` is its beginning.
    var oversizedLength: Int? = nil
}

/// Lines longer than this are not held whole: the quarantine row keeps their first `maxLineBytes`.
let maxHeldLineBytes = 64 << 20

/// Splits a byte stream into chunks of whole lines (about `target` bytes each).
final class LineChunker {
    let stream: ByteStream
    let file: Int
    let path: String
    let target: Int
    var buffer: [UInt8] = []
    var nextLine = 1
    var eof = false
    var atStart = true

    init(stream: ByteStream, file: Int, path: String, target: Int = 4 << 20) {
        self.stream = stream
        self.file = file
        self.path = path
        self.target = target
    }

    /// Reads until `buffer` holds at least `want` bytes or the input ends.
    func fill(_ want: Int) throws(InputError) {
        if buffer.count < want && !eof {
            // The room is zeroed once and filled by as many reads as the stream needs: a pipe
            // gives 64 KiB a read, and zeroing the whole room per read cost more than the reading.
            let old = buffer.count
            let step = max(want - old, 1 << 20)
            buffer.append(contentsOf: repeatElement(0, count: step))
            var filled = old
            while filled < old + step {
                let got = try readAppending(stream, into: &buffer, at: filled)
                if got == 0 { eof = true; break }
                filled += got
                if filled >= want { break }
            }
            buffer.removeLast(old + step - filled)
        }
        if atStart && (buffer.count >= 4 || eof) {
            atStart = false
            let skip = try buffer.withUnsafeBufferPointer { (b) throws(InputError) -> Int in try utf8TextStart(b, path: path) }
            buffer.removeFirst(skip)
        }
    }

    func next() throws(InputError) -> Chunk? {
        try fill(target)
        if buffer.isEmpty { return nil }
        if let cut = lastNewline(in: buffer, before: buffer.count) {
            return take(cut + 1)
        }
        if eof { return take(buffer.count) }
        // A single long line: read on until its end, holding at most `maxHeldLineBytes`.
        var searched = buffer.count
        while !eof && buffer.count < maxHeldLineBytes {
            try fill(min(buffer.count * 2, maxHeldLineBytes))
            if let nl = firstNewline(in: buffer, from: searched) { return take(nl + 1) }
            searched = buffer.count
        }
        if eof { return take(buffer.count) }
        // Too long to hold: keep its beginning, skip the rest of the line.
        var length = buffer.count
        let head = Array(buffer.prefix(maxLineBytes + 1))
        buffer.removeAll(keepingCapacity: true)
        while true {
            try fill(1 << 20)
            if buffer.isEmpty { break }
            if let nl = firstNewline(in: buffer, from: 0) {
                length += nl
                buffer.removeFirst(nl + 1)
                break
            }
            length += buffer.count
            buffer.removeAll(keepingCapacity: true)
        }
        let chunk = Chunk(file: file, firstLine: nextLine, bytes: head, oversizedLength: length)
        nextLine += 1
        return chunk
    }

    func take(_ count: Int) -> Chunk {
        // The chunk takes the buffer itself; only the tail after the cut is copied to a new one.
        var bytes = buffer
        var rest: [UInt8] = []
        rest.reserveCapacity(target + (1 << 20))
        rest.append(contentsOf: buffer[count...])
        buffer = rest
        bytes.removeLast(bytes.count - count)
        let chunk = Chunk(file: file, firstLine: nextLine, bytes: bytes)
        nextLine += countNewlines(bytes)
        if bytes.last != 0x0A { nextLine += 1 }
        return chunk
    }
}

func lastNewline(in b: [UInt8], before end: Int) -> Int? {
    var i = end - 1
    while i >= 0 { if b[i] == 0x0A { return i }; i -= 1 }
    return nil
}

func firstNewline(in b: [UInt8], from start: Int) -> Int? {
    b.withUnsafeBufferPointer { p in
        guard start < p.count else { return nil }
        if let hit = memchr(p.baseAddress! + start, 0x0A, p.count - start) {
            return p.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
        return nil
    }
}

/// The number of `\n` bytes in `b`, eight bytes a step: a byte x of the word is a newline iff
/// y = x ^ 0x0A is zero, iff ((y & 0x7F) + 0x7F) | y has its high bit clear (exact, no carries
/// between bytes).
func countNewlines(_ b: [UInt8]) -> Int {
    b.withUnsafeBufferPointer { p in
        guard let base = p.baseAddress else { return 0 }
        let ones: UInt64 = 0x0101_0101_0101_0101, lows: UInt64 = 0x7F7F_7F7F_7F7F_7F7F
        var n = 0, i = 0
        // Per-byte flags (0 or 1) summed in the word's bytes for up to 255 words, then folded.
        while i + 8 <= p.count {
            var flags: UInt64 = 0
            var k = 0
            while k < 255 && i + 8 <= p.count {
                let y = UnsafeRawPointer(base + i).loadUnaligned(as: UInt64.self) ^ (ones &* 0x0A)
                flags &+= (~(((y & lows) &+ lows) | y) & ~lows) >> 7
                i += 8
                k += 1
            }
            n += Int((flags &* ones) >> 56)
        }
        while i < p.count { if base[i] == 0x0A { n += 1 }; i += 1 }
        return n
    }
}

