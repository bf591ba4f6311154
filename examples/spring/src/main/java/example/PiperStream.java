package example;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.CommandLineRunner;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.core.io.buffer.DataBufferLimitException;
import org.springframework.http.codec.ServerSentEvent;
import org.springframework.web.reactive.function.client.WebClient;
import org.springframework.web.reactive.function.client.WebClientResponseException;

import reactor.core.publisher.Flux;
import reactor.core.publisher.Mono;
import reactor.util.retry.Retry;

/**
 * Streams one consumer's events from event-piper with Spring's WebClient and
 * prints each on stdout as "id TAB type TAB data" (logs go to stderr).
 *
 * <pre>
 * mvn -B -q package
 * java -jar target/event-piper-webclient.jar --piper.url=http://localhost:4000 --piper.consumer=toto
 * </pre>
 *
 * --piper.last-event-id=41 starts after id 41 (the service replays the rows
 * after it first).
 *
 * WebClient does not reconnect by itself. Flux.defer builds a new request for
 * every subscription, so each reconnection sends the id of the last event
 * printed as Last-Event-ID and the service replays what was missed, nothing
 * twice. repeatWhen resubscribes after a stream that ended cleanly (the
 * service shutting down) once the service's retry: delay has passed;
 * retryWhen resubscribes after an error (connection refused or lost, a 503
 * from a draining or full instance, no byte for IDLE_TIMEOUT) with back-off.
 * A 4xx (bad consumer id, bad token) will not get better: it ends the program,
 * and so does an event larger than WebClient's buffer (256 KiB by default; for
 * larger rows build the client with WebClient.builder() and
 * codecs(c -> c.defaultCodecs().maxInMemorySize(...))).
 */
@SpringBootApplication
public class PiperStream implements CommandLineRunner {
    private static final Logger log = LoggerFactory.getLogger(PiperStream.class);

    /** Heartbeats come every HEARTBEAT_SECONDS (15): silence this long means a dead connection. */
    private static final Duration IDLE_TIMEOUT = Duration.ofSeconds(60);

    @Value("${piper.url:http://localhost:4000}")
    private String baseUrl;

    @Value("${piper.consumer}")
    private String consumer;

    @Value("${piper.last-event-id:#{null}}")
    private String startAfter;

    public static void main(String[] args) {
        SpringApplication.run(PiperStream.class, args);
    }

    @Override
    public void run(String... args) {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        AtomicReference<String> lastId = new AtomicReference<>(startAfter);
        AtomicReference<Duration> retryDelay = new AtomicReference<>(Duration.ofSeconds(1));
        WebClient client = WebClient.create(baseUrl);

        Flux<ServerSentEvent<String>> stream = Flux.defer(() -> {
            WebClient.RequestHeadersSpec<?> request = client.get()
                    .uri("/events")
                    .header("X-Consumer-Id", consumer);
            String after = lastId.get();
            if (after != null) {
                request = request.header("Last-Event-Id", after);
            }
            log.info("connecting{}", after != null ? " after id " + after : "");
            return request.retrieve()
                    .bodyToFlux(new ParameterizedTypeReference<ServerSentEvent<String>>() {})
                    .timeout(IDLE_TIMEOUT);
        });

        try {
            stream.doOnNext(event -> {
                        if (event.retry() != null) {
                            retryDelay.set(event.retry());
                        }
                    })
                    // The retry: block and the heartbeat comments arrive as events without id or data.
                    .filter(event -> event.id() != null && event.data() != null)
                    .doOnNext(event -> {
                        lastId.set(event.id());
                        out.println(event.id() + "\t" + (event.event() != null ? event.event() : "message")
                                + "\t" + event.data());
                    })
                    .repeatWhen(ends -> ends.concatMap(end -> {
                        log.info("stream ended, reconnecting in {} ms", retryDelay.get().toMillis());
                        return Mono.delay(retryDelay.get());
                    }))
                    .retryWhen(Retry.backoff(Long.MAX_VALUE, Duration.ofMillis(250))
                            .maxBackoff(Duration.ofSeconds(5))
                            .transientErrors(true) // back-off starts over once an event comes through
                            .filter(error -> !isFinal(error))
                            .doBeforeRetry(retry -> log.warn("connection failed ({}), retry {}",
                                    retry.failure().toString(), retry.totalRetriesInARow() + 1)))
                    .blockLast();
        } catch (WebClientResponseException error) {
            log.error("giving up: {} {}", error.getMessage(), error.getResponseBodyAsString());
            System.exit(1);
        }
    }

    /**
     * A 4xx, or an event larger than WebClient's buffer (maxInMemorySize,
     * 256 KiB by default), which would fail again on every retry.
     */
    private static boolean isFinal(Throwable error) {
        if (error instanceof WebClientResponseException response && response.getStatusCode().is4xxClientError()) {
            return true;
        }
        return error instanceof DataBufferLimitException || error.getCause() instanceof DataBufferLimitException;
    }
}
