import Foundation

/// Write-once result slots filled by parallel workers (each index by at most one worker).
public final class ResultSlots<T>: @unchecked Sendable {
    private var storage: [T?]
    private let lock = NSLock()
    public init(count: Int) { storage = Array(repeating: nil, count: count) }
    public func set(_ i: Int, _ value: T) { lock.lock(); storage[i] = value; lock.unlock() }
    /// Every slot's value (all must be set).
    public func values() -> [T] { storage.map { $0! } }
    /// The values of the slots that were set, in order.
    public func setValues() -> [T] { storage.compactMap { $0 } }
}
