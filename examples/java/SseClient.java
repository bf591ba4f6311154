// Streams one consumer's events from event-piper with the JDK alone (Java 17,
// java.net.http), printing each event as "<id> TAB <type> TAB <data>".
//
//   java examples/java/SseClient.java http://localhost:4000 toto [maxEvents]
//
// Environment: LAST_EVENT_ID (start after this id), TOKEN (sent as
// "Authorization: Bearer").
//
// HttpClient speaks HTTP/2 when it can: over https:// it offers h2 by ALPN
// (to trust a private CA, run with -Djavax.net.ssl.trustStore=FILE
// -Djavax.net.ssl.trustStorePassword=...), so every stream of the client
// shares one connection; over http:// it stays on HTTP/1.1 here. Its stderr
// says which one each connection got.
//
// It does what a browser's EventSource does: parses text/event-stream line by
// line, remembers the id of the last complete event, and after a lost
// connection waits the retry: delay the service sent, then reconnects with
// Last-Event-ID so the service replays what was missed: nothing lost,
// nothing twice. A 4xx answer is final; a 503 (instance full or draining) is
// retried after its Retry-After.
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.Iterator;
import java.util.stream.Stream;

public final class SseClient {
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final URI uri;
    private final String consumer;
    private final long maxEvents;
    private String lastEventId;
    private long retryMillis = 1000;
    private long received;

    private SseClient(URI uri, String consumer, long maxEvents, String lastEventId) {
        this.uri = uri;
        this.consumer = consumer;
        this.maxEvents = maxEvents;
        this.lastEventId = lastEventId;
    }

    public static void main(String[] args) throws InterruptedException {
        if (args.length < 2) {
            System.err.println("usage: java SseClient.java BASE_URL CONSUMER_ID [MAX_EVENTS]");
            System.exit(64);
        }
        URI uri = URI.create(args[0].replaceAll("/+$", "") + "/events");
        long max = args.length > 2 ? Long.parseLong(args[2]) : 0;
        new SseClient(uri, args[1], max, System.getenv("LAST_EVENT_ID")).run();
    }

    private void run() throws InterruptedException {
        while (true) {
            try {
                if (stream()) {
                    return;
                }
                System.err.println("stream ended, reconnecting after " + retryMillis + " ms");
            } catch (IOException | UncheckedIOException e) {
                System.err.println("connection lost (" + e + "), reconnecting after " + retryMillis + " ms");
            }
            Thread.sleep(retryMillis);
        }
    }

    /** One connection. Returns true when done (maxEvents reached). */
    private boolean stream() throws IOException, InterruptedException {
        HttpRequest.Builder request = HttpRequest.newBuilder(uri)
                .header("Accept", "text/event-stream")
                .header("X-Consumer-Id", consumer);
        if (lastEventId != null && !lastEventId.isEmpty()) {
            request.header("Last-Event-ID", lastEventId);
        }
        String token = System.getenv("TOKEN");
        if (token != null && !token.isEmpty()) {
            request.header("Authorization", "Bearer " + token);
        }
        HttpResponse<Stream<String>> response = http.send(request.build(), HttpResponse.BodyHandlers.ofLines());
        try (Stream<String> lines = response.body()) {
            int status = response.statusCode();
            if (status == 503) {
                retryMillis = 1000 * response.headers().firstValueAsLong("Retry-After").orElse(1);
                System.err.println("service busy (503)");
                return false;
            }
            if (status != 200) {
                System.err.println("stream refused with HTTP " + status + ": " + String.join("\n", (Iterable<String>) lines::iterator));
                System.exit(1);
            }
            System.err.println("connected over " + response.version()
                    + (lastEventId != null ? " after id " + lastEventId : ""));
            return readEvents(lines.iterator());
        }
    }

    /** Parses the stream; the fields of one event accumulate until a blank line. */
    private boolean readEvents(Iterator<String> lines) {
        String id = null;
        String type = null;
        StringBuilder data = null;
        while (lines.hasNext()) {
            String line = lines.next();
            if (line.isEmpty()) {
                if (data != null) {
                    if (id != null) {
                        lastEventId = id;
                    }
                    System.out.println(lastEventId + "\t" + (type != null ? type : "message") + "\t" + data);
                    System.out.flush();
                    if (maxEvents > 0 && ++received >= maxEvents) {
                        return true;
                    }
                }
                id = null;
                type = null;
                data = null;
                continue;
            }
            if (line.startsWith(":")) {
                continue; // heartbeat comment
            }
            int colon = line.indexOf(':');
            String field = colon < 0 ? line : line.substring(0, colon);
            String value = colon < 0 ? "" : line.substring(colon + 1);
            if (value.startsWith(" ")) {
                value = value.substring(1);
            }
            switch (field) {
                case "id" -> id = value;
                case "event" -> type = value;
                case "data" -> data = data == null ? new StringBuilder(value) : data.append('\n').append(value);
                case "retry" -> {
                    if (value.matches("[0-9]+")) {
                        retryMillis = Long.parseLong(value);
                    }
                }
                default -> { } // unknown fields are ignored, as the SSE spec says
            }
        }
        return false;
    }
}
