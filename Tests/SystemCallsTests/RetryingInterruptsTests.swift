import Glibc
import SystemCalls
import Testing

@Suite("retryingInterrupts")
struct RetryingInterruptsTests {
    @Test("a call interrupted by a signal is made again until it is not")
    func retriesOnEINTR() throws {
        var calls = 0
        let result = try retryingInterrupts { () -> Int32 in
            calls += 1
            guard calls > 2 else {
                errno = EINTR
                return -1
            }
            return 7
        }
        #expect(result == 7)
        #expect(calls == 3)
    }

    @Test("any other failure is thrown at once as its Errno")
    func throwsOtherErrors() {
        var calls = 0
        #expect(throws: Errno(rawValue: EBADF)) {
            try retryingInterrupts { () -> Int in
                calls += 1
                errno = EBADF
                return -1
            }
        }
        #expect(calls == 1)
    }

    @Test("a real system call's failure comes out as the named code")
    func realCall() {
        #expect(throws: Errno.noSuchFile) {
            try retryingInterrupts { open("/nonexistent/ccached-test", O_RDONLY) }
        }
    }
}
