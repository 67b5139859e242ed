/*
 * Starts DynamoDB Local listening on 127.0.0.1 only.
 *
 * Why: `java -jar DynamoDBLocal.jar` listens on every interface (*:<port>) and has no option to bind
 * one address, so anyone who can reach this machine could read the tables and forge keys (security
 * review, issue #12, finding 7). This program builds the server exactly as the jar's own main does
 * (same arguments, same ServerRunner), then sets the host of its Jetty connectors to 127.0.0.1
 * before starting it.
 *
 * How: local-runner/dynamodb-local.ts runs it as a single-file source program (Java 11+ compiles it in
 * memory; it needs a JDK's jdk.compiler module):
 *   java -Djava.library.path=<lib> -cp "<DynamoDBLocal.jar>:<lib>/*" DynamoDbLocalOnLoopback.java -port N ...
 * The engine's field `server` is private, so this reaches it by reflection; a DynamoDB Local release
 * that renames it (or leaves Jetty) breaks this program, never silently:
 *   - it prints RUNNING_MARKER first, so the runner can tell "this program could not run at all" (no
 *     compiler, a compile error against a changed jar: the marker never appears) from a failure of the
 *     engine itself (a busy port: the marker appeared, then the engine failed);
 *   - when the connectors cannot be bound to loopback it prints UNSUPPORTED_MARKER and exits with
 *     EXIT_UNSUPPORTED (78) without starting anything.
 * In both of those cases the runner falls back to the plain jar and says, in one line, that DynamoDB
 * Local is reachable from the network. Any other failure is reported as it is.
 */
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class DynamoDbLocalOnLoopback {
  static final String RUNNING_MARKER = "DynamoDbLocalOnLoopback: running";
  static final String UNSUPPORTED_MARKER = "DynamoDbLocalOnLoopback: cannot bind DynamoDB Local to loopback:";
  static final int EXIT_UNSUPPORTED = 78;
  static final String HOST = "127.0.0.1";

  public static void main(String[] args) throws Exception {
    System.out.println(RUNNING_MARKER);
    System.out.flush();
    // Errors here (bad arguments, a data folder it cannot open) are the engine's own: let them through.
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    String refused = bindToLoopback(proxy);
    if (refused != null) {
      System.err.println(UNSUPPORTED_MARKER + " " + refused);
      System.err.flush();
      System.exit(EXIT_UNSUPPORTED);
    }
    // A busy port and the like fail here, after the marker: the runner reports them, no fallback. Exit as
    // the jar's own main does (the engine's threads would keep a JVM that listens on nothing alive).
    try {
      proxy.start();
    } catch (Exception e) {
      System.err.println("DynamoDbLocalOnLoopback: DynamoDB Local failed to start:");
      for (Throwable t = e; t != null; t = t.getCause()) System.err.println("  " + t);
      System.err.flush();
      System.exit(1);
    }
    System.out.println("DynamoDbLocalOnLoopback: listening on " + HOST);
    System.out.flush();
    proxy.join();
  }

  /** Sets every connector's host to loopback; returns why it could not, or null. */
  static String bindToLoopback(DynamoDBProxyServer proxy) {
    try {
      Field field = DynamoDBProxyServer.class.getDeclaredField("server");
      field.setAccessible(true);
      Object value = field.get(proxy);
      if (!(value instanceof Server)) {
        return "its field 'server' holds " + (value == null ? "null" : value.getClass().getName()) + ", not a Jetty Server";
      }
      Connector[] connectors = ((Server) value).getConnectors();
      if (connectors == null || connectors.length == 0) return "its Jetty server has no connector";
      for (Connector connector : connectors) {
        // Any other kind of connector could keep listening on every interface: refuse rather than guess.
        if (!(connector instanceof ServerConnector)) return "unexpected connector " + connector.getClass().getName();
      }
      for (Connector connector : connectors) ((ServerConnector) connector).setHost(HOST);
      return null;
    } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
      return e.toString();
    }
  }
}
