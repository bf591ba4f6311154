// Command client streams one consumer's events from event-piper with Go's
// standard library alone, printing each event on stdout as
// "<id> TAB <type> TAB <data>".
//
//	go build -o piper-client . && PIPER_URL=http://localhost:4000 CONSUMER_ID=toto ./piper-client
//
// Optional: LAST_EVENT_ID (start after this id: the service replays the rows
// after it first), TOKEN (sent as "Authorization: Bearer").
//
// It does what a browser's EventSource does: it parses text/event-stream
// (lines ending in "\n" or "\r\n", as the service writes them), keeps the id
// of the last complete event, and reconnects with it as Last-Event-ID, so
// nothing is lost and nothing comes twice. After a stream that ended (the
// service shutting down) it waits the retry: delay the service sent; after a
// failure (connection refused or lost, no byte for idleTimeout) it backs off,
// doubling the delay up to maxBackoff; a 503 (instance draining or full) is
// retried after its Retry-After. A 4xx (bad consumer id, bad token) will not
// get better: the client exits.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	// Heartbeats come every HEARTBEAT_SECONDS (15): silence this long
	// means a dead connection.
	idleTimeout = 60 * time.Second
	maxBackoff  = 10 * time.Second
)

type client struct {
	url      string
	consumer string
	token    string
	lastID   string        // id of the last event printed
	retry    time.Duration // the service's retry: field
}

// refused is a 4xx answer: final.
type refused struct {
	status int
	body   string
}

func (r refused) Error() string {
	return fmt.Sprintf("stream refused with HTTP %d: %s", r.status, r.body)
}

// unavailable is a 503 answer, to retry after its Retry-After.
type unavailable struct{ after time.Duration }

func (u unavailable) Error() string { return "service unavailable (503)" }

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	base := os.Getenv("PIPER_URL")
	if base == "" {
		base = "http://localhost:4000"
	}
	c := &client{
		url:      strings.TrimRight(base, "/") + "/events",
		consumer: os.Getenv("CONSUMER_ID"),
		token:    os.Getenv("TOKEN"),
		lastID:   os.Getenv("LAST_EVENT_ID"),
		retry:    time.Second,
	}
	if c.consumer == "" {
		log.Print("set CONSUMER_ID")
		os.Exit(64)
	}
	failures := 0
	for {
		err := c.stream(func() { failures = 0 })
		var delay time.Duration
		var r refused
		var u unavailable
		switch {
		case errors.As(err, &r):
			log.Print(r)
			os.Exit(1)
		case errors.As(err, &u):
			delay = u.after
			log.Printf("%v, retrying in %v", u, delay)
		case err == nil:
			delay = c.retry
			log.Printf("stream ended, reconnecting in %v", delay)
		default:
			failures++
			delay = c.retry << (failures - 1)
			if delay > maxBackoff || delay <= 0 {
				delay = maxBackoff
			}
			delay = delay/2 + time.Duration(rand.Int63n(int64(delay/2)+1))
			log.Printf("connection failed (%v), retrying in %v", err, delay)
		}
		time.Sleep(delay)
	}
}

// stream makes one request and prints its events until the stream ends
// (nil) or fails. connected is called once the service has accepted it.
func (c *client) stream(connected func()) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("X-Consumer-Id", c.consumer)
	if c.lastID != "" {
		req.Header.Set("Last-Event-ID", c.lastID)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		after := c.retry
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			after = time.Duration(s) * time.Second
		}
		return unavailable{after}
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return refused{resp.StatusCode, strings.TrimSpace(string(body))}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if c.lastID != "" {
		log.Printf("connected after id %s", c.lastID)
	} else {
		log.Print("connected")
	}
	connected()
	return c.read(bufio.NewReader(resp.Body), idle)
}

// read parses the stream: the fields of one event accumulate until a blank
// line, which dispatches the event if it has data (the retry: block and the
// heartbeat comments have none).
func (c *client) read(r *bufio.Reader, idle *time.Timer) error {
	id, eventType := c.lastID, ""
	var data []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF && line == "" {
				return nil // the service ended the stream
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err // an unfinished event is dropped
		}
		idle.Reset(idleTimeout)
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if data != nil {
				if eventType == "" {
					eventType = "message"
				}
				c.lastID = id
				fmt.Printf("%s\t%s\t%s\n", id, eventType, strings.Join(data, "\n"))
			}
			eventType, data = "", nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue // heartbeat comment
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			if !strings.ContainsRune(value, 0) {
				id = value
			}
		case "event":
			eventType = value
		case "data":
			data = append(data, value)
		case "retry":
			if ms, err := strconv.Atoi(value); err == nil && ms >= 0 {
				c.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}
