package example;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.CommandLineRunner;
import org.springframework.boot.WebApplicationType;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.builder.SpringApplicationBuilder;
import org.springframework.core.ParameterizedTypeReference;
import org.springframework.http.MediaType;
import org.springframework.http.codec.ServerSentEvent;
import org.springframework.web.reactive.function.client.WebClient;
import org.springframework.web.reactive.function.client.WebClientResponseException;

import reactor.core.publisher.Flux;
import reactor.util.retry.Retry;

/**
 * Streams one consumer's events from event-piper and prints each as
 * "id TAB type TAB data".
 *
 * WebClient does not reconnect by itself. Flux.defer builds a new request for
 * every (re)subscription, so each one carries the id of the last event
 * received as Last-Event-ID and the service replays what was missed:
 * repeatWhen resubscribes after a stream that ended cleanly (the service
 * restarting), retryWhen after an error; a 4xx (bad consumer id or token) is
 * not retried.
 */
@SpringBootApplication
public class PiperStream implements CommandLineRunner {
    private static final ParameterizedTypeReference<ServerSentEvent<String>> SSE =
            new ParameterizedTypeReference<>() { };

    @Value("${piper.url:http://localhost:4000}")
    private String baseUrl;

    @Value("${piper.consumer}")
    private String consumer;

    private final AtomicReference<String> lastEventId = new AtomicReference<>();

    public static void main(String[] args) {
        new SpringApplicationBuilder(PiperStream.class).web(WebApplicationType.NONE).run(args);
    }

    @Override
    public void run(String... args) {
        WebClient client = WebClient.create(baseUrl);
        Flux.defer(() -> client.get()
                        .uri("/events")
                        .accept(MediaType.TEXT_EVENT_STREAM)
                        .header("X-Consumer-Id", consumer)
                        .headers(h -> {
                            String id = lastEventId.get();
                            if (id != null) {
                                h.set("Last-Event-ID", id);
                            }
                        })
                        .retrieve()
                        .bodyToFlux(SSE))
                .filter(event -> event.data() != null) // heartbeats arrive as comment-only events
                .doOnNext(event -> lastEventId.set(event.id()))
                .repeatWhen(ended -> ended.delayElements(Duration.ofSeconds(1)))
                .retryWhen(Retry.backoff(Long.MAX_VALUE, Duration.ofMillis(500))
                        .maxBackoff(Duration.ofSeconds(10))
                        .filter(error -> !(error instanceof WebClientResponseException response
                                && response.getStatusCode().is4xxClientError())))
                .doOnNext(event -> System.out.println(event.id() + "\t" + event.event() + "\t" + event.data()))
                .blockLast();
    }
}
