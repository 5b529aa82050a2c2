// Grants ACLs and creates SCRAM users on a secure cluster with one Admin
// client: `scripts/kafka.sh start --secure` and `kafka.sh acls` feed it
// deploy/kafka/acls, already parsed, on stdin. One JVM for the whole file: the
// stock kafka-acls tool (kafka.admin.AclCommand) takes one JVM per combination
// of principal, operations and pattern type, 33 of them for deploy/kafka/acls.
//
//   java -cp 'LIBS/*' ApplyAcls.java ADMIN_JAVA_PROPERTIES < LINES
//
// LINES, tab-separated:
//   user  NAME  PASSWORD                                   a SCRAM-SHA-512 user, created if it has no credentials
//   acl   PRINCIPAL  OPERATION  RESOURCE_TYPE  PATTERN_TYPE  NAME   an ALLOW binding for any host
//
// Idempotent: bindings and users that exist are left as they are; nothing is
// removed. Prints one summary line on stderr; exits 1 with the broker's error.
import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ScramCredentialInfo;
import org.apache.kafka.clients.admin.ScramMechanism;
import org.apache.kafka.clients.admin.UserScramCredentialAlteration;
import org.apache.kafka.clients.admin.UserScramCredentialUpsertion;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class ApplyAcls {
  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: ApplyAcls ADMIN_JAVA_PROPERTIES < lines");
      System.exit(2);
    }
    Properties props = new Properties();
    try (FileInputStream in = new FileInputStream(args[0])) {
      props.load(in);
    }
    props.putIfAbsent("default.api.timeout.ms", "30000");

    Map<String, String> users = new LinkedHashMap<>();
    Set<AclBinding> wanted = new LinkedHashSet<>();
    BufferedReader reader = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    int lineNo = 0;
    for (String line; (line = reader.readLine()) != null;) {
      lineNo++;
      if (line.isEmpty()) continue;
      String[] f = line.split("\t", -1);
      if (f[0].equals("user") && f.length == 3) {
        users.put(f[1], f[2]);
      } else if (f[0].equals("acl") && f.length == 6) {
        AclOperation op = AclOperation.fromString(f[2]);
        ResourceType type = ResourceType.fromString(f[3]);
        PatternType pattern = PatternType.fromString(f[4]);
        if (op == AclOperation.UNKNOWN || type == ResourceType.UNKNOWN || pattern == PatternType.UNKNOWN) {
          fail("line " + lineNo + ": unknown operation, resource type or pattern type: " + line);
        }
        wanted.add(new AclBinding(new ResourcePattern(type, f[5], pattern),
            new AccessControlEntry(f[1], "*", op, AclPermissionType.ALLOW)));
      } else {
        fail("line " + lineNo + ": expected 'user NAME PASSWORD' or 'acl PRINCIPAL OP TYPE PATTERN NAME': " + line);
      }
    }

    try (Admin admin = Admin.create(props)) {
      int newUsers = 0;
      if (!users.isEmpty()) {
        Set<String> existing = new HashSet<>(admin.describeUserScramCredentials().users().get());
        List<UserScramCredentialAlteration> upserts = new ArrayList<>();
        for (Map.Entry<String, String> u : users.entrySet()) {
          if (existing.contains(u.getKey())) continue;
          upserts.add(new UserScramCredentialUpsertion(u.getKey(),
              new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), u.getValue()));
        }
        if (!upserts.isEmpty()) admin.alterUserScramCredentials(upserts).all().get();
        newUsers = upserts.size();
      }
      Set<AclBinding> present = new HashSet<>(admin.describeAcls(AclBindingFilter.ANY).values().get());
      List<AclBinding> missing = new ArrayList<>();
      for (AclBinding b : wanted) {
        if (!present.contains(b)) missing.add(b);
      }
      if (!missing.isEmpty()) admin.createAcls(missing).all().get();
      System.err.printf(Locale.ROOT, "kafka.sh: ACLs: %d bindings (%d new); SCRAM users: %d (%d new)%n",
          wanted.size(), missing.size(), users.size(), newUsers);
    } catch (ExecutionException e) {
      fail(e.getCause() == null ? e.toString() : e.getCause().toString());
    }
  }

  private static void fail(String message) {
    System.err.println("ApplyAcls: " + message);
    System.exit(1);
  }
}
